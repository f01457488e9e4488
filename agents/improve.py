"""Learned search for the job shop, all from the FDD/MWKR schedule, best schedule kept: ``l2s`` (the improvement
policy chooses every move), ``ppo-tabu`` (``tabu`` whose candidate moves the policy prunes) and ``cpsat-ppo``
(CP-SAT hinted with the schedule ``ppo-tabu`` or ``l2s`` found in the first part of the time)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from schedgym.agents.checkpoint import DEFAULT_POLICY, PolicyMetadata, load_network
from schedgym.baselines.jobshop.cpsat import CpSatJobShop
from schedgym.baselines.jobshop.rules import DispatchingRule
from schedgym.baselines.jobshop.tabu import TabuSearchSolver
from schedgym.envs.jobshop import JobShopInstance, JobShopSolution
from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule
from schedgym.envs.jobshop.improve import JobShopImproveEnv
from schedgym.graphs.jobshop_improve import ImproveEncoder

_DEFAULT_MOVES = 5000  # l2s without --time-limit or steps


def load_improvement_policy(policy: str) -> tuple[torch.nn.Module, PolicyMetadata]:
    """The network and metadata of an improvement policy (a shipped name or a checkpoint; "": the default).

    Raises:
        CheckpointError: missing or corrupt, or a policy of another problem.
    """
    return load_network(policy or DEFAULT_POLICY["jobshop-improve"], "jobshop-improve")


def _refuse_downtime(machine_downtime, name: str) -> None:
    if machine_downtime:
        raise ValueError(f"{name} improves static schedules; drop the machine downtime or use cpsat")


@dataclass
class ImprovementPolicySolver:
    """``l2s``: local search whose every move is drawn from the improvement policy's masked softmax.

    The search runs episodes of the policy's training horizon back to back, each starting from the best schedule
    found so far, until ``steps`` moves were made or the time limit passed (``steps`` alone: no time limit; neither:
    5,000 moves). The best schedule wins.

    Attributes:
        policy: a shipped improvement policy name or a checkpoint path.
        steps: moves in all (None: until the time limit).
        greedy: take the best-scored move instead of sampling (the search can then cycle).
        torch_threads: CPU threads for inference.
    """

    name: str = "l2s"
    policy: str = ""
    steps: int | None = None
    greedy: bool = False
    torch_threads: int = 1
    net: torch.nn.Module = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.net, self.metadata = load_improvement_policy(self.policy)
        self.horizon = int(self.metadata.train.get("improve_horizon", 500))

    @torch.inference_mode()
    def solve(
        self, instance: JobShopInstance, *, time_limit: float | None = None, seed: int | None = None,
        machine_downtime: list[tuple[int, int, int]] | None = None,
    ) -> JobShopSolution:
        _refuse_downtime(machine_downtime, self.name)
        torch.set_num_threads(self.torch_threads)
        begin = time.perf_counter()
        deadline = None if time_limit is None else begin + time_limit
        budget = self.steps if self.steps is not None else (None if time_limit is not None else _DEFAULT_MOVES)
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
        env = JobShopImproveEnv(instance, horizon=self.horizon)
        observation, info = env.reset(seed=seed)
        best_makespan, best_start_times = info["best_makespan"], env.best_start_times
        moves = 0
        while (budget is None or moves < budget) and (deadline is None or time.perf_counter() < deadline):
            logits, _ = self.net({key: torch.from_numpy(value)[None] for key, value in observation.items()})
            logits = logits[0].masked_fill(~torch.from_numpy(env.action_masks()), float("-inf"))
            action = int(logits.argmax()) if self.greedy else int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
            observation, _, terminated, truncated, info = env.step(action)
            moves += 1
            if info["best_makespan"] < best_makespan:
                best_makespan, best_start_times = info["best_makespan"], env.best_start_times
            if terminated:
                break  # no move left: the schedule is optimal
            if truncated:
                observation, _ = env.reset(options={"start_times": best_start_times})
        self.moves_made = moves
        return JobShopSolution(instance.name, best_start_times)


@dataclass
class PolicyMoveScorer:
    """instance -> a :data:`~schedgym.baselines.jobshop.tabu.MoveScorer` from the improvement policy: every
    operation's logit in the observation of the current schedule (its best-so-far and moves-left features read as
    at an episode's start), on ``torch_threads`` CPU threads."""

    policy: str = ""
    torch_threads: int = 1
    net: torch.nn.Module = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.net, _ = load_improvement_policy(self.policy)

    def __call__(self, instance: JobShopInstance):
        torch.set_num_threads(self.torch_threads)
        encoder = ImproveEncoder(instance.n_jobs, instance.n_ops, instance.n_machines)
        fixed = encoder.fixed_fields(instance)
        nodes = torch.from_numpy(np.array([encoder.node(op, instance.n_ops) for op in range(instance.n_operations)]))

        @torch.inference_mode()
        def score(schedule: DisjunctiveSchedule) -> np.ndarray:
            observation = encoder.encode(schedule, schedule.moves(), schedule.makespan, 1.0, fixed)
            logits, _ = self.net({key: torch.from_numpy(value)[None] for key, value in observation.items()})
            return logits[0, nodes].numpy()

        return score


def policy_tabu_solver(policy: str = "", keep_moves: int | None = 8, rescore_every: int = 20, torch_threads: int = 1) -> TabuSearchSolver:
    """``ppo-tabu``: :class:`~schedgym.baselines.jobshop.tabu.TabuSearchSolver` from the FDD/MWKR schedule, each
    iteration choosing only among the ``keep_moves`` moves the improvement policy scores highest (and any move
    whose estimate beats the best), ties to the better-scored move, the scores refreshed every ``rescore_every``
    iterations, until the time limit (10 s without one)."""
    return TabuSearchSolver(
        "ppo-tabu", DispatchingRule("fdd-mwkr"), scorer=PolicyMoveScorer(policy, torch_threads),
        keep_moves=keep_moves, rescore_every=rescore_every,
    )


@dataclass
class PolicyCpSatSolver:
    """``cpsat-ppo``: the policy's search (``hint_search``: ``ppo-tabu``, one thread, or ``l2s``) for
    ``search_fraction`` of the time limit, then CP-SAT (``workers`` threads) for the rest, hinted with the best
    schedule that search found (instead of the FDD/MWKR one ``cpsat`` is hinted with); CP-SAT's answer is never
    worse than its hint, and its proven lower bound is kept."""

    name: str = "cpsat-ppo"
    policy: str = ""
    search_fraction: float = 0.3
    workers: int = 2
    hint_search: str = "ppo-tabu"
    default_time_limit_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.search_fraction < 1.0:
            raise ValueError(f"search_fraction must lie strictly between 0 and 1, got {self.search_fraction}")
        searches = {"ppo-tabu": lambda: policy_tabu_solver(self.policy), "l2s": lambda: ImprovementPolicySolver(policy=self.policy)}
        if self.hint_search not in searches:
            raise ValueError(f"hint_search must be one of {sorted(searches)}, got {self.hint_search!r}")
        self.search = searches[self.hint_search]()

    def solve(
        self, instance: JobShopInstance, *, time_limit: float | None = None, seed: int | None = None,
        machine_downtime: list[tuple[int, int, int]] | None = None,
    ) -> JobShopSolution:
        _refuse_downtime(machine_downtime, self.name)
        begin = time.perf_counter()
        limit_s = self.default_time_limit_s if time_limit is None else time_limit
        hint = self.search.solve(instance, time_limit=self.search_fraction * limit_s, seed=seed)
        remaining_s = max(0.1, limit_s - (time.perf_counter() - begin))
        return CpSatJobShop(num_workers=self.workers).solve(instance, time_limit=remaining_s, seed=seed, hint_start_times=hint.start_times)
