"""Static list schedulers on the expected-time matrix: HEFT and CPoP (Topcuoglu, Hariri & Wu, IEEE TPDS 2002).

Both build a plan with insertion (a task may fill an idle gap of a PE between two planned tasks) and return it
through :func:`execute_plan`, which runs it with the actual run times. On a stream, jobs are planned one after the
other in arrival order, each into the timelines the earlier ones left.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from schedgym.envs.socdag import SocDagInstance, SocDagSolution, execute_plan


class _Plan:
    """Planned start / end / PE per task, and per PE its planned busy intervals (sorted)."""

    def __init__(self, instance: SocDagInstance) -> None:
        self.instance = instance
        self.pe = np.full(instance.n_tasks, -1, dtype=np.int64)
        self.start_us = np.zeros(instance.n_tasks)
        self.end_us = np.zeros(instance.n_tasks)
        self.busy: list[list[tuple[float, float]]] = [[] for _ in range(instance.n_pes)]
        self.in_edges: list[list[int]] = [[] for _ in range(instance.n_tasks)]
        for e, child in enumerate(instance.edges[:, 1].tolist()):
            self.in_edges[child].append(e)

    def earliest_start_us(self, task: int, pe: int) -> float:
        """Earliest start of ``task`` on ``pe``: data ready, then the first idle gap long enough."""
        inst = self.instance
        ready = float(inst.arrival_us[inst.task_job[task]])
        for e in self.in_edges[task]:
            parent = inst.edges[e, 0]
            ready = max(ready, self.end_us[parent] + float(inst.transfer_us(inst.edge_bytes[e], self.pe[parent], pe)))
        duration = inst.expected_us[task, pe]
        previous_end = 0.0
        for begin, end in self.busy[pe]:
            if max(ready, previous_end) + duration <= begin:
                break
            previous_end = max(previous_end, end)
        return max(ready, previous_end)

    def best_pe(self, task: int, pes: np.ndarray) -> tuple[int, float]:
        """(PE, start) of the earliest finish among ``pes`` (ties: the lowest PE id)."""
        best = (np.inf, -1, 0.0)
        for pe in pes.tolist():
            start = self.earliest_start_us(task, pe)
            finish = start + self.instance.expected_us[task, pe]
            if finish < best[0]:
                best = (finish, pe, start)
        return best[1], best[2]

    def place(self, task: int, pe: int, start_us: float) -> None:
        self.pe[task] = pe
        self.start_us[task] = start_us
        self.end_us[task] = start_us + self.instance.expected_us[task, pe]
        bisect.insort(self.busy[pe], (start_us, self.end_us[task]))

    def execute(self) -> SocDagSolution:
        return execute_plan(self.instance, self.pe, self.start_us)


def heft_plan(instance: SocDagInstance) -> _Plan:
    """HEFT: tasks by decreasing upward rank (job by job), each on the PE where it finishes earliest."""
    plan = _Plan(instance)
    rank = instance.upward_rank()
    supported = instance.supported()
    order = np.lexsort((np.arange(instance.n_tasks), -rank, instance.task_job))
    for task in order.tolist():
        plan.place(task, *plan.best_pe(task, np.flatnonzero(supported[task])))
    return plan


def cpop_plan(instance: SocDagInstance) -> _Plan:
    """CPoP: priority = upward + downward rank. Per job, the tasks on its critical path (priority equal to the
    entry task's) all go to the one PE that would finish the whole path first (its run time, counted from when the
    PE's plan so far ends: on one DAG, the PE that runs the path fastest); the others go to their earliest-finish
    PE. Tasks are taken highest priority first among those whose parents are planned."""
    plan = _Plan(instance)
    priority = np.round(instance.upward_rank() + instance.downward_rank(), 6)
    supported = instance.supported()
    children: list[list[int]] = [[] for _ in range(instance.n_tasks)]
    for parent, child in instance.edges.tolist():
        children[parent].append(child)
    parents_left = np.bincount(instance.edges[:, 1], minlength=instance.n_tasks).tolist()
    for job in range(instance.n_jobs):
        first, last = int(instance.job_first_task[job]), int(instance.job_first_task[job + 1])
        entries = [t for t in range(first, last) if parents_left[t] == 0]
        critical_length = max(priority[t] for t in entries)
        path = [max(entries, key=lambda t: (priority[t], -t))]
        while children[path[-1]]:
            path.append(max(children[path[-1]], key=lambda t: (priority[t], -t)))
        path = [t for t in path if priority[t] >= critical_length - 1e-6]
        on_all = supported[path].all(axis=0)
        busy_until = np.array([max((end for _, end in plan.busy[pe]), default=0.0) for pe in range(instance.n_pes)])
        ready_at = np.maximum(busy_until, instance.arrival_us[job])
        path_cost = np.where(on_all, ready_at + instance.expected_us[path].sum(axis=0), np.inf)
        critical_pe = int(np.argmin(path_cost)) if on_all.any() else -1
        critical = set(path) if critical_pe >= 0 else set()
        ready = list(entries)
        while ready:
            task = max(ready, key=lambda t: (priority[t], -t))
            ready.remove(task)
            if task in critical:
                plan.place(task, critical_pe, plan.earliest_start_us(task, critical_pe))
            else:
                plan.place(task, *plan.best_pe(task, np.flatnonzero(supported[task])))
            for child in children[task]:
                parents_left[child] -= 1
                if parents_left[child] == 0:
                    ready.append(child)
    return plan


@dataclass
class StaticListScheduler:
    """``heft`` or ``cpop`` as a solver: plan on expected times, execute with actual times."""

    name: str = "heft"

    def solve(self, instance: SocDagInstance, *, time_limit: float | None = None, seed: int | None = None) -> SocDagSolution:
        plans = {"heft": heft_plan, "cpop": cpop_plan}
        if self.name not in plans:
            raise ValueError(f"unknown static scheduler {self.name!r}; choose heft or cpop")
        return plans[self.name](instance).execute()
