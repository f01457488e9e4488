"""The job-shop schedule builder: one event-driven simulator used by the env and by every dispatching rule.

A decision picks a job; its next operation is placed at the earliest time it fits on its machine, inside an idle gap
if one is long enough (a left-shift insertion), else after the machine's last operation. Every schedule built this
way is active, and every active schedule - an optimal one among them - can be built by some order of decisions.

State is numpy arrays updated incrementally by the compiled kernels of :mod:`schedgym.envs.jobshop.kernels`: placing an operation touches its job and the jobs whose next operation
waits on the same machine, nothing else.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from schedgym.envs.jobshop import kernels
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.solution import JobShopSolution

#: Which jobs a decision may choose from.
#: ``legal``: every unfinished job. ``giffler-thompson``: the jobs competing for the machine of the operation that
#: could finish first (Giffler & Thompson 1960; still reaches every active schedule). ``non-delay``: the jobs whose
#: next operation can start at the earliest start time of all.
ActionFilter = Literal["legal", "giffler-thompson", "non-delay"]
ACTION_FILTERS: tuple[str, ...] = ("legal", "giffler-thompson", "non-delay")


class JobShopSimulator:
    """Builds one schedule for ``instance``, one operation per :meth:`dispatch`.

    Attributes (read-only for callers; shapes use J = n_jobs, O = n_ops, M = n_machines):
        next_op: int64 ``[J]``, index of each job's next unscheduled operation (``O`` when the job is done).
        job_ready: int64 ``[J]``, completion time of each job's last scheduled operation.
        next_machine: int64 ``[J]``, machine of each job's next operation (-1 when done).
        next_duration: int64 ``[J]``, duration of each job's next operation (0 when done).
        earliest_start: int64 ``[J]``, earliest start of each job's next operation on its machine (a large
            sentinel when the job is done).
        start_times: int64 ``[J, O]``, start of every scheduled operation, -1 if not scheduled yet.
        machine_ops: int64 ``[M, C]``, per machine the flat operation ids (``j * O + o``) in time order, -1 for a
            downtime block; ``machine_count[m]`` entries are used.
        machine_work_left: int64 ``[M]``, total duration of the unscheduled operations of each machine.
        machine_pred: int64 ``[J * O]``, flat id of the operation scheduled just before each operation on its
            machine, -1 if none (or if the operation is not scheduled yet).
        makespan: completion time of the last scheduled operation.
    """

    def __init__(self, instance: JobShopInstance, machine_downtime: list[tuple[int, int, int]] | None = None) -> None:
        self.instance = instance
        self.machine_downtime = sorted((int(m), int(s), int(e)) for m, s, e in (machine_downtime or []))
        n_jobs, n_ops, n_machines = instance.n_jobs, instance.n_ops, instance.n_machines
        capacity = machine_capacity(instance, self.machine_downtime)
        self.next_op = np.zeros(n_jobs, dtype=np.int64)
        self.job_ready = np.zeros(n_jobs, dtype=np.int64)
        self.next_machine = np.zeros(n_jobs, dtype=np.int64)
        self.next_duration = np.zeros(n_jobs, dtype=np.int64)
        self.earliest_start = np.zeros(n_jobs, dtype=np.int64)
        self.start_times = np.zeros((n_jobs, n_ops), dtype=np.int64)
        self.machine_starts = np.zeros((n_machines, capacity), dtype=np.int64)
        self.machine_ends = np.zeros((n_machines, capacity), dtype=np.int64)
        self.machine_ops = np.zeros((n_machines, capacity), dtype=np.int64)
        self.machine_count = np.zeros(n_machines, dtype=np.int64)
        self.machine_pred = np.zeros(n_jobs * n_ops, dtype=np.int64)
        self.machine_work_left = np.zeros(n_machines, dtype=np.int64)
        self._progress = np.zeros(2, dtype=np.int64)  # (makespan, n_scheduled), written by the kernels
        self._candidates = np.zeros(n_jobs, dtype=bool)
        self._machines = np.ascontiguousarray(instance.machines, dtype=np.int64)
        self._durations = np.ascontiguousarray(instance.durations, dtype=np.int64)
        self._job_index = np.arange(n_jobs)
        # _suffix_work[j, o]: work of job j from operation o to its end; column O is 0.
        self._suffix_work = np.zeros((n_jobs, n_ops + 1), dtype=np.int64)
        self._suffix_work[:, :-1] = np.cumsum(instance.durations[:, ::-1], axis=1)[:, ::-1]
        down = np.array(self.machine_downtime, dtype=np.int64).reshape(-1, 3)
        kernels.reset_schedule(n_jobs, n_ops, self._machines, self._durations, down[:, 0].copy(), down[:, 1].copy(), down[:, 2].copy(), *self._state())

    # ----------------------------------------------------------------------------------------------- queries
    @property
    def makespan(self) -> int:
        """Completion time of the last scheduled operation."""
        return int(self._progress[0])

    @property
    def n_scheduled(self) -> int:
        """Operations scheduled so far."""
        return int(self._progress[1])

    @property
    def done(self) -> bool:
        return self.n_scheduled == self.instance.n_operations

    def legal_jobs(self) -> np.ndarray:
        """bool ``[J]``: jobs with an operation left."""
        return self.next_op < self.instance.n_ops

    def candidate_jobs(self, action_filter: ActionFilter = "legal") -> np.ndarray:
        """bool ``[J]``: the jobs a decision may choose under ``action_filter`` (see :data:`ActionFilter`)."""
        return self.settle(action_filter, skip_forced=False)

    def settle(self, action_filter: ActionFilter = "legal", skip_forced: bool = False) -> np.ndarray:
        """:meth:`candidate_jobs`; with ``skip_forced``, first dispatch by itself while they are a single job and
        more than one operation is left (so that every decision left is a real choice)."""
        if action_filter not in ACTION_FILTERS:
            raise ValueError(f"unknown action filter {action_filter!r}; choose one of {ACTION_FILTERS}")
        inst = self.instance
        kernels.settle(
            ACTION_FILTERS.index(action_filter), skip_forced, inst.n_jobs, inst.n_ops, self._machines, self._durations,
            *self._state(), self._candidates,
        )
        return self._candidates.copy()

    def remaining_work(self) -> np.ndarray:
        """int64 ``[J]``: total duration of each job's unscheduled operations."""
        return self._suffix_work[self._job_index, self.next_op]

    def done_work(self) -> np.ndarray:
        """int64 ``[J]``: total duration of each job's scheduled operations."""
        return self._suffix_work[:, 0] - self.remaining_work()

    # ----------------------------------------------------------------------------------------------- decisions
    def dispatch(self, job: int) -> tuple[int, int]:
        """Schedule the next operation of ``job`` at its earliest start; returns its ``(start, end)``.

        Raises:
            ValueError: if ``job`` is out of range or has no operation left.
        """
        n_jobs, n_ops = self.instance.n_jobs, self.instance.n_ops
        if not (0 <= job < n_jobs) or self.next_op[job] >= n_ops:
            legal = np.flatnonzero(self.legal_jobs()).tolist()
            raise ValueError(f"invalid action {job!r}: job is out of range or finished; legal jobs are {legal}")
        start = kernels.dispatch(int(job), n_ops, self._machines, self._durations, *self._state())
        return int(start), int(start + self.instance.durations[job, self.next_op[job] - 1])

    def solution(self) -> JobShopSolution:
        """The schedule built so far (complete once :attr:`done`)."""
        return JobShopSolution(self.instance.name, self.start_times.copy(), list(self.machine_downtime))

    # ----------------------------------------------------------------------------------------------- internals
    def _state(self) -> tuple[np.ndarray, ...]:
        """The state arrays in the order the kernels take them (see :mod:`schedgym.envs.jobshop.kernels`)."""
        return (
            self.next_op, self.job_ready, self.next_machine, self.next_duration, self.earliest_start, self.start_times,
            self.machine_starts, self.machine_ends, self.machine_ops, self.machine_count, self.machine_pred,
            self.machine_work_left, self._progress,
        )


def machine_capacity(instance: JobShopInstance, machine_downtime: list[tuple[int, int, int]]) -> int:
    """Blocks the busiest machine holds once every operation is scheduled: its operations plus its downtime blocks."""
    ops_per_machine = np.bincount(instance.machines.ravel(), minlength=instance.n_machines)
    down_per_machine = np.bincount([m for m, _, _ in machine_downtime], minlength=instance.n_machines)
    return max(1, int((ops_per_machine + down_per_machine).max()))
