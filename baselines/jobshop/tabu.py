"""Tabu search on the disjunctive graph of the job shop: improves a schedule by reordering machines.

The schedule is a :class:`~schedgym.envs.jobshop.disjunctive.DisjunctiveSchedule` (the one the improvement env
uses: compiled kernels, incremental re-evaluation). Each iteration

1. lists the N5 moves of Nowicki and Smutnicki (1996) on every critical path: swap the first two or the last two
   operations of a critical block (not the first two of a block that starts the schedule nor the last two of one
   that ends it). Swapping adjacent critical operations never creates a cycle;
2. scores each move by the estimate of Taillard (1994): the longest path through the two swapped operations after
   the swap, computed from the current heads and tails in O(1);
3. applies the best move that is not tabu (a move is tabu for a random tenure after its reverse was made), or a
   tabu one that would beat the best makespan (aspiration); ties are broken at random.

With a ``move_scorer`` (``ppo-tabu``: the improvement policy's logits), step 3 only considers the ``keep_moves``
moves it scores highest, plus any move whose estimate beats the best makespan (``keep_moves=None``: all of them),
and ties of the estimate go to the better-scored move instead of a coin flip; the scores are recomputed every
``rescore_every`` iterations (a network's forward pass costs a hundred iterations of the search itself).

After ``restart_after`` iterations without a new best, the search goes back to the best schedule and perturbs
it with a few random N5 moves. The search stops early when no move exists: the critical path is then all on one
machine or all in one job, so the makespan equals a lower bound and is optimal. Machine interruptions (downtime)
are not modelled: the search schedules the static instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from schedgym.envs.jobshop import JobShopInstance, JobShopSolution
from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule

#: schedule -> float scores [n_operations] of swapping each operation with its machine successor, higher is more
#: promising.
MoveScorer = Callable[[DisjunctiveSchedule], np.ndarray]


@dataclass
class TabuSearchResult:
    """What a search found: the best start times ``[n_jobs, n_ops]``, their makespan, and iterations made."""

    start_times: np.ndarray
    makespan: int
    iterations: int


def tabu_search(
    instance: JobShopInstance,
    start_times: np.ndarray,
    *,
    time_limit_s: float | None = None,
    max_iterations: int | None = None,
    seed: int | None = None,
    restart_after: int = 1500,
    move_scorer: MoveScorer | None = None,
    keep_moves: int | None = 3,
    rescore_every: int = 1,
) -> TabuSearchResult:
    """Improve the schedule ``start_times`` (int ``[n_jobs, n_ops]``, feasible) by tabu search over the N5
    neighbourhood until ``time_limit_s`` seconds have passed or ``max_iterations`` moves were made (at least one of
    the two must be given). ``move_scorer`` / ``keep_moves`` / ``rescore_every``: prune each iteration's moves to
    the best-scored ones (module docstring). Returns the best schedule seen (never worse than the one given, made semi-active)."""
    if time_limit_s is None and max_iterations is None:
        raise ValueError("tabu_search needs a time limit or an iteration limit, or it would never stop")
    if (keep_moves is not None and keep_moves < 1) or rescore_every < 1:
        raise ValueError(f"keep_moves (or None) and rescore_every must be at least 1, got {keep_moves} and {rescore_every}")
    scores = np.zeros(instance.n_operations)
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
    rng = np.random.default_rng(seed)
    schedule = DisjunctiveSchedule.from_start_times(instance, start_times)
    best_makespan, best = schedule.makespan, schedule.copy()
    tenure_min = 10 + instance.n_jobs // instance.n_machines
    tenure_max = int(1.4 * tenure_min) + 1
    tabu_until: dict[tuple[int, int], int] = {}
    mask = np.zeros(instance.n_operations, dtype=np.int8)
    iteration = since_best = 0
    while (max_iterations is None or iteration < max_iterations) and (deadline is None or time.perf_counter() < deadline):
        iteration += 1
        moves = np.flatnonzero(schedule.moves(mask))
        if len(moves) == 0:
            break  # the critical path is one machine's sequence or one job: its length is a lower bound, so optimal
        estimates = schedule.estimates(moves)
        successors = schedule.machine_succ[moves]
        considered = np.ones(len(moves), dtype=bool)
        if move_scorer is not None and (iteration - 1) % rescore_every == 0:
            scores = move_scorer(schedule)
        if move_scorer is not None and keep_moves is not None and len(moves) > keep_moves:
            considered[:] = False
            considered[np.argsort(-scores[moves], kind="stable")[:keep_moves]] = True
            considered |= estimates < best_makespan
        chosen, chosen_value = -1, None
        for k in np.flatnonzero(considered).tolist():
            value = int(estimates[k])
            allowed = tabu_until.get((int(moves[k]), int(successors[k])), 0) <= iteration or value < best_makespan
            if not allowed:
                continue
            if move_scorer is not None:  # ties go to the better-scored move
                better = chosen_value is None or value < chosen_value or (value == chosen_value and scores[moves[k]] > scores[moves[chosen]])
            else:
                better = chosen_value is None or value < chosen_value or (value == chosen_value and rng.random() < 0.5)
            if better:
                chosen, chosen_value = k, value
        if chosen < 0:  # every move is tabu: make the one whose tabu status ends first
            chosen = min(range(len(moves)), key=lambda k: tabu_until.get((int(moves[k]), int(successors[k])), 0))
        u, v = int(moves[chosen]), int(successors[chosen])
        schedule.swap(u)
        tabu_until[(v, u)] = iteration + int(rng.integers(tenure_min, tenure_max + 1))
        since_best += 1
        if schedule.makespan < best_makespan:
            best_makespan, best, since_best = schedule.makespan, schedule.copy(), 0
        elif since_best >= restart_after:
            schedule = best.copy()
            for _ in range(int(rng.integers(2, 6))):
                moves = np.flatnonzero(schedule.moves(mask))
                if len(moves):
                    schedule.swap(int(moves[int(rng.integers(len(moves)))]))
            tabu_until.clear()
            since_best = 0
    return TabuSearchResult(best.start_times(), best.makespan, iteration)


class JobShopSolver(Protocol):
    """Anything that schedules a job-shop instance (a rule, a trained policy, ...)."""

    def solve(self, instance: JobShopInstance, *, time_limit: float | None = None, seed: int | None = None) -> JobShopSolution: ...


@dataclass
class TabuSearchSolver:
    """A solver: the schedule of a start solver improved by :func:`tabu_search` for the rest of the time limit.

    Attributes:
        start: the solver that builds the first schedule (FDD/MWKR for the registered ``tabu``; any solver, e.g.
            the trained policy in ``benchmarks/sampling_search.py``); its time counts against the limit.
        default_time_limit_s: the whole time when ``solve`` gets no time limit.
        scorer: instance -> the :data:`MoveScorer` that prunes the search's moves on it (``ppo-tabu``: the
            improvement policy), with ``keep_moves`` and ``rescore_every`` (see :func:`tabu_search`); None: plain
            tabu search.
    """

    name: str
    start: JobShopSolver
    default_time_limit_s: float = 10.0
    scorer: Callable[[JobShopInstance], MoveScorer] | None = None
    keep_moves: int | None = 3
    rescore_every: int = 1

    def solve(
        self,
        instance: JobShopInstance,
        *,
        time_limit: float | None = None,
        seed: int | None = None,
        machine_downtime: list[tuple[int, int, int]] | None = None,
    ) -> JobShopSolution:
        """The start solver's schedule, improved until ``time_limit`` seconds from the call have passed.

        Raises:
            ValueError: with machine downtime (the search does not model interruptions).
        """
        if machine_downtime:
            raise ValueError("tabu search schedules the static job shop; drop the machine downtime or use cpsat")
        begin = time.perf_counter()
        first = self.start.solve(instance, seed=seed)
        move_scorer = None if self.scorer is None else self.scorer(instance)
        limit_s = self.default_time_limit_s if time_limit is None else time_limit
        remaining_s = max(0.0, limit_s - (time.perf_counter() - begin))
        result = tabu_search(
            instance, first.start_times, time_limit_s=remaining_s, seed=seed, move_scorer=move_scorer,
            keep_moves=self.keep_moves, rescore_every=self.rescore_every,
        )
        return JobShopSolution(instance.name, result.start_times)
