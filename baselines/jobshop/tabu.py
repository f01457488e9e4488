"""Tabu search on the disjunctive graph of the job shop: improves a schedule by reordering machines.

A schedule is represented by its machine sequences (the order of the operations on every machine); its
semi-active start times are the heads of the disjunctive graph. Each iteration

1. computes heads ``r`` (earliest start) and tails ``q`` (longest path from an operation's end to the end of the
   schedule) in one topological pass each, and one critical path;
2. splits the critical path into blocks (maximal runs of operations on one machine) and lists the N5 moves of
   Nowicki and Smutnicki (1996): swap the first two or the last two operations of a block (not the first two of the
   first block nor the last two of the last one). Swapping adjacent critical operations never creates a cycle;
3. scores each move by the estimate of Taillard (1994): the longest path through the two swapped operations after
   the swap, computed from the old heads and tails in O(1);
4. applies the best move that is not tabu (a move is tabu for a random tenure after its reverse was made), or a
   tabu one that would beat the best makespan (aspiration).

After ``restart_after`` iterations without a new best, the search goes back to the best sequences and perturbs
them with a few random critical swaps. The search stops early when no move exists: the critical path is then all
on one machine or all in one job, so the makespan equals a lower bound and is optimal. Machine interruptions
(downtime) are not modelled: the search schedules the static instance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from schedgym.envs.jobshop import JobShopInstance, JobShopSolution
from schedgym.envs.resource_order import tasks_by_resource


def machine_sequences(instance: JobShopInstance, start_times: np.ndarray) -> list[list[int]]:
    """The operations of every machine in start-time order, as flat ids ``job * n_ops + op``: ``[n_machines][ops on
    that machine]`` (ties broken by id)."""
    return tasks_by_resource(instance.machines.ravel(), np.asarray(start_times).ravel(), instance.n_machines)


class DisjunctiveGraph:
    """Heads, tails and critical path of one set of machine sequences; updated in place by :meth:`swap`.

    Operations are flat ids ``job * n_ops + op``. ``-1`` stands for "no predecessor / successor". Times are in the
    instance's integer units.
    """

    def __init__(self, instance: JobShopInstance, sequences: list[list[int]]) -> None:
        n_ops = instance.n_ops
        n = instance.n_operations
        self.duration: list[int] = instance.durations.ravel().tolist()
        self.job_pred = [op - 1 if op % n_ops else -1 for op in range(n)]
        self.job_succ = [op + 1 if (op + 1) % n_ops else -1 for op in range(n)]
        self.sequences = [list(s) for s in sequences]
        self.machine_pred = [-1] * n
        self.machine_succ = [-1] * n
        for seq in self.sequences:
            self._link(seq)
        self.position = [0] * n
        for seq in self.sequences:
            for k, op in enumerate(seq):
                self.position[op] = k
        self.machine_of = instance.machines.ravel().tolist()
        self.head = [0] * n
        self.tail = [0] * n
        self.makespan = 0
        self.update()

    def _link(self, seq: list[int]) -> None:
        for a, b in zip(seq, seq[1:]):
            self.machine_succ[a] = b
            self.machine_pred[b] = a
        if seq:
            self.machine_pred[seq[0]] = -1
            self.machine_succ[seq[-1]] = -1

    def update(self) -> None:
        """Recompute heads, tails and the makespan (Kahn's topological order).

        Raises:
            ValueError: if the sequences make a cycle (they then describe no schedule).
        """
        job_pred, machine_pred = self.job_pred, self.machine_pred
        job_succ, machine_succ = self.job_succ, self.machine_succ
        duration, head, tail = self.duration, self.head, self.tail
        n = len(duration)
        indegree = [(job_pred[v] >= 0) + (machine_pred[v] >= 0) for v in range(n)]
        order = [v for v in range(n) if indegree[v] == 0]
        for v in order:  # the list grows while it is walked: Kahn's queue
            for w in (job_succ[v], machine_succ[v]):
                if w >= 0:
                    indegree[w] -= 1
                    if indegree[w] == 0:
                        order.append(w)
        if len(order) < n:
            raise ValueError("the machine sequences contain a cycle: they describe no feasible schedule")
        for v in order:
            a, b = job_pred[v], machine_pred[v]
            ra = head[a] + duration[a] if a >= 0 else 0
            rb = head[b] + duration[b] if b >= 0 else 0
            head[v] = ra if ra > rb else rb
        makespan = 0
        for v in reversed(order):
            a, b = job_succ[v], machine_succ[v]
            qa = tail[a] + duration[a] if a >= 0 else 0
            qb = tail[b] + duration[b] if b >= 0 else 0
            q = qa if qa > qb else qb
            tail[v] = q
            if head[v] + duration[v] + q > makespan:
                makespan = head[v] + duration[v] + q
        self.makespan = makespan

    def critical_blocks(self, rng: np.random.Generator) -> list[list[int]]:
        """One critical path split into blocks: maximal runs of consecutive operations on one machine, in path order.

        The path is traced back from a last operation; where both predecessors are critical, one is drawn at random
        (so successive calls explore different critical paths)."""
        duration, head, tail = self.duration, self.head, self.tail
        ends = [v for v in range(len(duration)) if tail[v] == 0 and head[v] + duration[v] == self.makespan]
        v = ends[int(rng.integers(len(ends)))]
        path = [v]
        while True:
            a, b = self.job_pred[v], self.machine_pred[v]
            a_critical = a >= 0 and head[a] + duration[a] == head[v]
            b_critical = b >= 0 and head[b] + duration[b] == head[v]
            if a_critical and b_critical:
                v = a if rng.random() < 0.5 else b
            elif a_critical:
                v = a
            elif b_critical:
                v = b
            else:
                break  # no predecessor ends at this start (it is 0): the path starts here
            path.append(v)
        path.reverse()
        blocks = [[path[0]]]
        for u, v in zip(path, path[1:]):
            if self.machine_succ[u] == v:
                blocks[-1].append(v)
            else:
                blocks.append([v])
        return blocks

    def swap_estimate(self, u: int, v: int) -> int:
        """Taillard's estimate of the makespan after swapping ``u`` and its machine successor ``v``: the longest path
        through ``u`` or ``v`` in the new order, from the current heads and tails (a lower bound of the new
        makespan)."""
        duration, head, tail = self.duration, self.head, self.tail
        a, b = self.machine_pred[u], self.machine_succ[v]
        jp_v, jp_u, js_u, js_v = self.job_pred[v], self.job_pred[u], self.job_succ[u], self.job_succ[v]
        head_v = max(head[jp_v] + duration[jp_v] if jp_v >= 0 else 0, head[a] + duration[a] if a >= 0 else 0)
        head_u = max(head[jp_u] + duration[jp_u] if jp_u >= 0 else 0, head_v + duration[v])
        tail_u = max(tail[js_u] + duration[js_u] if js_u >= 0 else 0, tail[b] + duration[b] if b >= 0 else 0)
        tail_v = max(tail[js_v] + duration[js_v] if js_v >= 0 else 0, tail_u + duration[u])
        return max(head_v + duration[v] + tail_v, head_u + duration[u] + tail_u)

    def swap(self, u: int, v: int) -> None:
        """Swap ``u`` and its machine successor ``v`` in their machine's sequence (heads and tails are then stale:
        call :meth:`update`)."""
        seq = self.sequences[self.machine_of[u]]
        k = self.position[u]
        seq[k], seq[k + 1] = v, u
        self.position[v], self.position[u] = k, k + 1
        a, b = self.machine_pred[u], self.machine_succ[v]
        self.machine_pred[v], self.machine_succ[v] = a, u
        self.machine_pred[u], self.machine_succ[u] = v, b
        if a >= 0:
            self.machine_succ[a] = v
        if b >= 0:
            self.machine_pred[b] = u

    def start_times(self, shape: tuple[int, int]) -> np.ndarray:
        """The semi-active start times, int64 ``[n_jobs, n_ops]``."""
        return np.array(self.head, dtype=np.int64).reshape(shape)


def n5_moves(blocks: list[list[int]]) -> list[tuple[int, int]]:
    """The N5 swaps ``(u, v)`` (``v`` is ``u``'s machine successor) of a critical path's blocks."""
    moves = []
    last = len(blocks) - 1
    for i, block in enumerate(blocks):
        if len(block) < 2:
            continue
        if i > 0:
            moves.append((block[0], block[1]))
        if i < last and (i == 0 or len(block) > 2):
            moves.append((block[-2], block[-1]))
    return moves


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
) -> TabuSearchResult:
    """Improve the schedule ``start_times`` (int ``[n_jobs, n_ops]``, feasible) by tabu search over the N5
    neighbourhood until ``time_limit_s`` seconds have passed or ``max_iterations`` moves were made (at least one of
    the two must be given). Returns the best schedule seen (never worse than the one given, made semi-active)."""
    if time_limit_s is None and max_iterations is None:
        raise ValueError("tabu_search needs a time limit or an iteration limit, or it would never stop")
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
    rng = np.random.default_rng(seed)
    graph = DisjunctiveGraph(instance, machine_sequences(instance, start_times))
    best_makespan = graph.makespan
    best_sequences = [list(s) for s in graph.sequences]
    tenure_min = 10 + instance.n_jobs // instance.n_machines
    tenure_max = int(1.4 * tenure_min) + 1
    tabu_until: dict[tuple[int, int], int] = {}
    iteration = since_best = 0
    while (max_iterations is None or iteration < max_iterations) and (deadline is None or time.perf_counter() < deadline):
        iteration += 1
        moves = n5_moves(graph.critical_blocks(rng))
        if not moves:
            break  # the critical path is one machine's sequence or one job: its length is a lower bound, so optimal
        chosen, chosen_value = None, None
        for u, v in moves:
            value = graph.swap_estimate(u, v)
            allowed = tabu_until.get((u, v), 0) <= iteration or value < best_makespan
            if allowed and (chosen_value is None or value < chosen_value or (value == chosen_value and rng.random() < 0.5)):
                chosen, chosen_value = (u, v), value
        if chosen is None:  # every move is tabu: make the one whose tabu status ends first
            chosen = min(moves, key=lambda move: tabu_until[move])
        u, v = chosen
        graph.swap(u, v)
        tabu_until[(v, u)] = iteration + int(rng.integers(tenure_min, tenure_max + 1))
        graph.update()
        since_best += 1
        if graph.makespan < best_makespan:
            best_makespan, since_best = graph.makespan, 0
            best_sequences = [list(s) for s in graph.sequences]
        elif since_best >= restart_after:
            graph = DisjunctiveGraph(instance, best_sequences)
            for _ in range(int(rng.integers(2, 6))):
                moves = n5_moves(graph.critical_blocks(rng))
                if moves:
                    graph.swap(*moves[int(rng.integers(len(moves)))])
                    graph.update()
            tabu_until.clear()
            since_best = 0
    best = DisjunctiveGraph(instance, best_sequences)
    return TabuSearchResult(best.start_times((instance.n_jobs, instance.n_ops)), best.makespan, iteration)


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
    """

    name: str
    start: JobShopSolver
    default_time_limit_s: float = 10.0

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
        limit_s = self.default_time_limit_s if time_limit is None else time_limit
        remaining_s = max(0.0, limit_s - (time.perf_counter() - begin))
        result = tabu_search(instance, first.start_times, time_limit_s=remaining_s, seed=seed)
        return JobShopSolution(instance.name, result.start_times)
