"""Registers the built-in problems and their solvers with :mod:`schedgym.registry`."""

from __future__ import annotations

from typing import Any

from schedgym.baselines.jobshop import RULE_SCORES, CpSatJobShop, DispatchingRule
from schedgym.envs import ENV_IDS
from schedgym.envs.jobshop import (
    SUITES,
    JobShopInstance,
    JobShopSolution,
    resolve_suite,
    save_gantt_png,
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
        save_picture=save_gantt_png,
        default_leaderboard=[
            ("taillard", ["spt", "lpt", "fifo", "mor", "mwkr", "fdd-mwkr", "ppo"], None),
            ("taillard-15x15", ["cpsat"], 3.0),
        ],
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


def _ppo_factory(samples_default: int):
    def factory(policy: str = "", samples: int | None = None, **_: Any):
        from schedgym.agents.solvers import PpoSolver

        k = samples_default if samples is None else samples
        return PpoSolver(name="ppo" if k == 0 else "ppo-sample", policy=policy, samples=k)

    return factory


register_solver("jobshop", "ppo", _ppo_factory(0), "trained GNN policy, greedy (shipped jobshop-default unless --policy)")
register_solver(
    "jobshop",
    "ppo-sample",
    _ppo_factory(32),
    "trained GNN policy: greedy, then rounds of sampled rollouts (one batch each, up to --samples K, default 32) within --time-limit; best kept",
)
