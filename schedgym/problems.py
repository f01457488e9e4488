"""Registers the built-in problems and their solvers with :mod:`schedgym.registry`."""

from __future__ import annotations

from typing import Any

from schedgym.agents.sampling import SEARCH, SEARCHES
from schedgym.baselines.jobshop import RULE_SCORES, CpSatJobShop, DispatchingRule, TabuSearchSolver
from schedgym.baselines.jobshop.blocking import BlockingRule, CpSatBlockingJobShop
from schedgym.baselines.llmrouting import ROUTERS, LlumnixMigrate, Router
from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer, PackSolver
from schedgym.baselines.socdag import ONLINE_RULES, CpSatSocDag, OnlineRule, StaticListScheduler
from schedgym.envs import ENV_IDS, llmrouting, memmap, socdag
from schedgym.envs.llmrouting.render import latency_cdf_figure
from schedgym.envs.memmap.render import offset_time_figure
from schedgym.envs.jobshop.blocking_solution import BlockingJobShopSolution, validate_blocking
from schedgym.envs.jobshop.render import blocking_gantt_figure
from schedgym.envs.jobshop.suites import BLOCKING_SUITES, resolve_blocking_suite
from schedgym.envs.jobshop import (
    SUITES,
    JobShopInstance,
    JobShopSolution,
    resolve_suite,
    gantt_figure,
    validate,
)
from schedgym.registry import Problem, register_problem, register_solver


def _jobshop_evaluate(instance: JobShopInstance, solution: JobShopSolution) -> tuple[float, dict]:
    makespan = solution.makespan(instance)
    metrics: dict[str, Any] = {"makespan": makespan}
    if solution.lower_bound is not None:
        metrics["solver_lower_bound"] = solution.lower_bound
    return float(makespan), metrics


def _jobshop_suites() -> dict[str, str]:
    return {name: f"{len(names)} instances ({names[0]}..{names[-1]})" for name, names in SUITES.items()}


register_problem(
    Problem(
        name="jobshop",
        env_id=ENV_IDS["jobshop"],
        suites=_jobshop_suites(),
        load_suite=resolve_suite,
        validate=validate,
        evaluate=_jobshop_evaluate,
        bounds=lambda inst: (inst.lower_bound, inst.best_bound),
        group=lambda inst: inst.size,
        solution_from_dict=JobShopSolution.from_dict,
        picture=gantt_figure,
        default_leaderboard=[
            ("taillard", ["spt", "lpt", "fifo", "mor", "mwkr", "fdd-mwkr", "ppo"], None),
            ("taillard-15x15", ["cpsat", "tabu", "l2s"], 3.0),
        ],
        default_solver="mwkr",
    )
)

def _rule_factory(rule: str):
    def factory(action_filter: str = "non-delay", **_: Any) -> DispatchingRule:
        return DispatchingRule(rule, action_filter)

    return factory


for _rule, (_, _description) in RULE_SCORES.items():
    register_solver("jobshop", _rule, _rule_factory(_rule), f"dispatching rule: {_description}")
register_solver(
    "jobshop",
    "cpsat",
    lambda workers=2, hint="fdd-mwkr", **_: CpSatJobShop(num_workers=workers, hint_rule=hint),
    "CP-SAT: interval per operation, NoOverlap per machine, hinted with FDD/MWKR; reports its proven lower bound",
)
register_solver(
    "jobshop",
    "tabu",
    lambda **_: TabuSearchSolver("tabu", DispatchingRule("fdd-mwkr")),
    "tabu search (N5 swaps of critical blocks, Taillard's estimate) from the FDD/MWKR schedule until --time-limit"
    " (10 s without one)",
)

register_solver(
    "jobshop",
    "l2s",
    lambda policy="", steps=None, workers=None, **_: _improvement_solver("ImprovementPolicySolver", policy=policy, steps=None if steps is None else int(steps), torch_threads=workers or 1),
    "learned local search: the improvement policy (shipped jobshop-improve-default unless --policy) samples every N5"
    " move from the FDD/MWKR schedule, best kept, for l2s:<moves> moves or --time-limit (5,000 moves without either)",
    "steps",
)
register_solver(
    "jobshop",
    "ppo-tabu",
    lambda policy="", keep=8, rescore=20, workers=None, **_: _improvement_solver(
        "policy_tabu_solver", policy=policy, keep_moves=int(keep), rescore_every=int(rescore), torch_threads=workers or 1
    ),
    "tabu search from the FDD/MWKR schedule choosing among the 8 moves the improvement policy scores highest (scores"
    " refreshed every 20 iterations), until --time-limit (10 s without one)",
    "policy",
)
register_solver(
    "jobshop",
    "cpsat-ppo",
    lambda policy="", workers=2, fraction=0.3, hint="ppo-tabu", **_: _improvement_solver("PolicyCpSatSolver", policy=policy, workers=int(workers), search_fraction=float(fraction), hint_search=hint),
    "CP-SAT hinted with the schedule ppo-tabu (hint=l2s: l2s) finds in the first fraction=<0.3> of --time-limit"
    " (cpsat is hinted with FDD/MWKR's); reports its proven lower bound",
    "policy",
)


# ---------------------------------------------------------------------------------------------------- jobshop-blocking
register_problem(
    Problem(
        name="jobshop-blocking",
        env_id=ENV_IDS["jobshop-blocking"],
        suites=dict(BLOCKING_SUITES),
        load_suite=resolve_blocking_suite,
        validate=validate_blocking,
        evaluate=_jobshop_evaluate,
        # the classic instance's lower bound holds (blocking and shutdowns only add constraints); no blocking
        # schedule is known to be best, so there is no gap
        bounds=lambda inst: (inst.jobshop.lower_bound, None),
        group=lambda inst: inst.size,
        solution_from_dict=BlockingJobShopSolution.from_dict,
        picture=blocking_gantt_figure,
        default_leaderboard=[("blocking-taillard-15x15-shutdown0.05", [*RULE_SCORES, "ppo", "cpsat"], 3.0)],
        default_solver="mwkr",
    )
)


def _blocking_rule_factory(rule: str):
    def factory(release_first: bool = True, **_: Any) -> BlockingRule:
        return BlockingRule(rule, bool(release_first))

    return factory


for _rule, (_, _description) in RULE_SCORES.items():
    register_solver(
        "jobshop-blocking", _rule, _blocking_rule_factory(_rule),
        f"online rule, blocking-aware (jobs holding a machine move first): {_description}",
    )
register_solver(
    "jobshop-blocking",
    "cpsat",
    lambda workers=2, hint="mwkr", **_: CpSatBlockingJobShop(num_workers=workers, hint_rule=hint),
    "CP-SAT knowing the shutdowns in advance: holding interval per operation (start to the next start), NoOverlap per"
    " machine (swaps allowed), operations kept clear of shutdowns; hinted with blocking MWKR",
)


def _improvement_solver(kind: str, **options: Any):
    from schedgym.agents import improve

    return getattr(improve, kind)(**options)


def _ppo_factory(problem: str, samples_default: int):
    def factory(policy: str = "", samples: int | None = None, workers: int | None = None, **_: Any):
        from schedgym.agents.solvers import PpoSolver

        k = samples_default if samples is None else samples
        name = "ppo" if k == 0 else "ppo-sample"
        return PpoSolver(name=name, problem=problem, policy=policy, samples=k, torch_threads=workers or 1)

    return factory


_HINDSIGHT = {
    "jobshop-blocking": "; every rollout meets the same shutdowns, so with shutdowns this is a hindsight figure, not an online dispatcher",
    "socdag": "; on streams every rollout runs on the realised run times, so this is a hindsight figure, not an online scheduler",
    "llmrouting": "; every rollout replays the whole trace, so this is a hindsight figure, not an online router",
}
for _problem in ("jobshop", "jobshop-blocking", "socdag", "llmrouting", "memmap"):
    register_solver(_problem, "ppo", _ppo_factory(_problem, 0), f"trained GNN policy, greedy (shipped {_problem}-default unless --policy or ppo:<policy>)", "policy")
    register_solver(
        _problem,
        "ppo-sample",
        _ppo_factory(_problem, 8),
        "trained GNN policy: greedy, then " + SEARCHES[SEARCH[_problem]]
        + "; rounds go on within --time-limit, best kept"
        + _HINDSIGHT.get(_problem, ""),
        "policy",
    )


# ---------------------------------------------------------------------------------------------------- socdag
def _socdag_evaluate(instance: socdag.SocDagInstance, solution: socdag.SocDagSolution) -> tuple[float, dict]:
    metrics: dict[str, Any] = socdag.metrics(instance, solution)
    if solution.lower_bound_us is not None:
        metrics["solver_lower_bound"] = solution.lower_bound_us
    return socdag.objective(instance, solution), metrics


register_problem(
    Problem(
        name="socdag",
        env_id=ENV_IDS["socdag"],
        suites={name: f"{len(names)} instances ({names[0]}..{names[-1]})" for name, names in socdag.SUITES.items()},
        load_suite=socdag.resolve_suite,
        validate=socdag.validate,
        evaluate=_socdag_evaluate,
        bounds=lambda inst: (inst.optimum_us, inst.optimum_us),
        group=lambda inst: inst.group,
        solution_from_dict=socdag.SocDagSolution.from_dict,
        picture=socdag.gantt_figure,
        default_leaderboard=[
            ("socdag-static", ["heft", "cpop", "heft-online", "eft", "etf", "met", "srpt", "random", "cpsat", "ppo"], 10.0),
            ("socdag-stream-high", ["heft", "cpop", "heft-online", "eft", "etf", "met", "srpt", "random", "ppo"], None),
        ],
        default_solver="heft",
        summary_metrics=("p95_job_duration",),
    )
)
for _name in ("heft", "cpop"):
    register_solver("socdag", _name, lambda name=_name, **_: StaticListScheduler(name), f"static {_name.upper()} plan on expected times (insertion), run with the actual times")
for _name, (_, _description, _) in ONLINE_RULES.items():
    register_solver("socdag", _name, lambda name=_name, **_: OnlineRule(name), _description)
register_solver(
    "socdag",
    "cpsat",
    lambda workers=2, **_: CpSatSocDag(num_workers=workers),
    "CP-SAT for one static DAG: optional interval per (task, PE), NoOverlap per PE, transfer-delayed precedence; HEFT hint",
)


# ---------------------------------------------------------------------------------------------------- llmrouting
_LLM_METRICS = ("ttft_mean_s", "ttft_p99_s", "tpot_mean_s", "e2e_mean_s", "e2e_p99_s", "slo_attainment", "throughput_rps")


def _llmrouting_evaluate(instance: llmrouting.RoutingInstance, solution: llmrouting.RoutingSolution) -> tuple[float, dict]:
    values = llmrouting.metrics(instance.workload, solution, instance.ttft_slo_s, instance.tpot_slo_s)
    return values["e2e_mean_s"], {key: values[key] for key in _LLM_METRICS}


register_problem(
    Problem(
        name="llmrouting",
        env_id=ENV_IDS["llmrouting"],
        suites=dict(llmrouting.SUITES),
        load_suite=llmrouting.resolve_suite,
        validate=lambda inst, solution: llmrouting.validate(inst.workload, solution),
        evaluate=_llmrouting_evaluate,
        bounds=lambda inst: (None, None),
        group=lambda inst: inst.group,
        solution_from_dict=llmrouting.RoutingSolution.from_dict,
        comparison=latency_cdf_figure,
        default_leaderboard=[("azure-conv-high-4", [*ROUTERS, "ppo"], None), ("mooncake-conv-high-4", [*ROUTERS, "ppo"], None)],
        default_solver="least-outstanding",
        summary_metrics=("ttft_mean_s", "ttft_p99_s", "e2e_p99_s", "slo_attainment"),
    )
)
for _name, (_, _description) in ROUTERS.items():
    register_solver("llmrouting", _name, lambda name=_name, **_: Router(name), _description)
register_solver("llmrouting", "llumnix-migrate", lambda **_: LlumnixMigrate(),
                "Llumnix: freeness dispatch, and live migration of a decoding request from the least to the freest replica every 0.1 s")


# ---------------------------------------------------------------------------------------------------- memmap
def _memmap_evaluate(instance: memmap.MemMapInstance, solution: memmap.MemMapSolution) -> tuple[float, dict]:
    return memmap.objective(instance, solution), memmap.metrics(instance, solution)


register_problem(
    Problem(
        name="memmap",
        env_id=ENV_IDS["memmap"],
        suites=dict(memmap.SUITES),
        load_suite=memmap.resolve_suite,
        validate=memmap.validate,
        evaluate=_memmap_evaluate,
        bounds=lambda inst: (inst.peak_live_bytes(), None) if inst.packing else (None, None),
        group=lambda inst: inst.group,
        solution_from_dict=memmap.MemMapSolution.from_dict,
        picture=offset_time_figure,
        default_leaderboard=[("minimalloc", ["greedy-size", "msa", "first-fit", "pack"], 5.0), ("traced-models", ["greedy-size", "msa", "first-fit", "cpsat", "ppo", "ppo-mcts"], 5.0)],
        default_solver="greedy-size",
        summary_metrics=("improvement_pct", "fast_bytes_peak", "placed_fraction"),
    )
)
for _name, _description in (
    ("greedy-size", "largest buffer first, best-fit offset"),
    ("msa", "XLA-MSA-like: by benefit / sqrt(size), best-fit offset"),
    ("first-fit", "by live-range start, lowest offset"),
):
    register_solver("memmap", _name, lambda name=_name, **_: GreedyPlacer(name), _description)
register_solver(
    "memmap",
    "pack",
    lambda **_: PackSolver(),
    "exact search over canonical packings (MiniMalloc-class): packing within the capacity, or the fast-memory packer under the MSA-like choice of buffers",
)


def _mcts_factory(policy: str = "", workers: int | None = None, **_: Any):
    from schedgym.agents.mcts import MctsSolver

    return MctsSolver(policy=policy, torch_threads=workers or 1)


register_solver(
    "memmap",
    "ppo-mcts",
    _mcts_factory,
    "tree search at decision time (PUCT) over the exact env from the trained policy's greedy line: its prior, leaves "
    "valued by best-fit completions (MSA-like and largest-first order; each a valid map, the best kept); until "
    "--time-limit, else 4 rounds of up to 16 network expansions per decision",
    "policy",
)
register_solver(
    "memmap",
    "cpsat",
    lambda workers=2, **_: CpSatMemMap(num_workers=workers),
    "CP-SAT NoOverlap2D (time x offset) inside the capacity, hinted with greedy-size; packing: minimal peak, mapping: minimal modelled runtime",
)
