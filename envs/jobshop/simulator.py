"""The job-shop schedule builder: one event-driven simulator used by the env and by every dispatching rule.

A decision picks a job; its next operation is placed at the earliest time it fits on its machine, inside an idle gap
if one is long enough (a left-shift insertion), else after the machine's last operation. Every schedule built this
way is active, and every active schedule - an optimal one among them - can be built by some order of decisions.

State is numpy arrays updated incrementally: placing an operation touches its job and the jobs whose next operation
waits on the same machine, nothing else.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.solution import JobShopSolution

#: Which jobs a decision may choose from.
#: ``legal``: every unfinished job. ``giffler-thompson``: the jobs competing for the machine of the operation that
#: could finish first (Giffler & Thompson 1960; still reaches every active schedule). ``non-delay``: the jobs whose
#: next operation can start at the earliest start time of all.
ActionFilter = Literal["legal", "giffler-thompson", "non-delay"]
ACTION_FILTERS: tuple[str, ...] = ("legal", "giffler-thompson", "non-delay")

_NEVER = np.iinfo(np.int64).max // 4


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
        ops_per_machine = np.bincount(instance.machines.ravel(), minlength=n_machines)
        down_per_machine = np.bincount([m for m, _, _ in self.machine_downtime], minlength=n_machines)
        capacity = int((ops_per_machine + down_per_machine).max())

        self.next_op = np.zeros(n_jobs, dtype=np.int64)
        self.job_ready = np.zeros(n_jobs, dtype=np.int64)
        self.next_machine = instance.machines[:, 0].copy()
        self.next_duration = instance.durations[:, 0].copy()
        self.start_times = np.full((n_jobs, n_ops), -1, dtype=np.int64)
        self.machine_starts = np.full((n_machines, capacity), _NEVER, dtype=np.int64)
        self.machine_ends = np.full((n_machines, capacity), _NEVER, dtype=np.int64)
        self.machine_ops = np.full((n_machines, capacity), -1, dtype=np.int64)
        self.machine_count = np.zeros(n_machines, dtype=np.int64)
        self.machine_pred = np.full(n_jobs * n_ops, -1, dtype=np.int64)
        self.machine_work_left = np.bincount(instance.machines.ravel(), instance.durations.ravel(), minlength=n_machines).astype(np.int64)
        self.makespan = 0
        self.n_scheduled = 0
        self._job_index = np.arange(n_jobs)
        # _suffix_work[j, o]: work of job j from operation o to its end; column O is 0.
        self._suffix_work = np.zeros((n_jobs, n_ops + 1), dtype=np.int64)
        self._suffix_work[:, :-1] = np.cumsum(instance.durations[:, ::-1], axis=1)[:, ::-1]
        for m, start, end in self.machine_downtime:
            self._insert(m, start, end, -1)
        self.earliest_start = np.array([self._fit(j) for j in range(n_jobs)], dtype=np.int64)

    # ----------------------------------------------------------------------------------------------- queries
    @property
    def done(self) -> bool:
        return self.n_scheduled == self.instance.n_operations

    def legal_jobs(self) -> np.ndarray:
        """bool ``[J]``: jobs with an operation left."""
        return self.next_op < self.instance.n_ops

    def candidate_jobs(self, action_filter: ActionFilter = "legal") -> np.ndarray:
        """bool ``[J]``: the jobs a decision may choose under ``action_filter`` (see :data:`ActionFilter`)."""
        legal = self.legal_jobs()
        if action_filter == "legal" or not legal.any():
            return legal
        if action_filter == "non-delay":
            return legal & (self.earliest_start == self.earliest_start[legal].min())
        if action_filter == "giffler-thompson":
            completion = np.where(legal, self.earliest_start + self.next_duration, _NEVER)
            first = int(np.argmin(completion))
            return legal & (self.next_machine == self.next_machine[first]) & (self.earliest_start < completion[first])
        raise ValueError(f"unknown action filter {action_filter!r}; choose one of {ACTION_FILTERS}")

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
        op = int(self.next_op[job])
        machine = int(self.next_machine[job])
        start = int(self.earliest_start[job])
        end = start + int(self.next_duration[job])
        self._insert(machine, start, end, job * n_ops + op)
        self.start_times[job, op] = start
        self.job_ready[job] = end
        self.machine_work_left[machine] -= end - start
        self.makespan = max(self.makespan, end)
        self.n_scheduled += 1

        self.next_op[job] = op + 1
        if op + 1 < n_ops:
            self.next_machine[job] = self.instance.machines[job, op + 1]
            self.next_duration[job] = self.instance.durations[job, op + 1]
        else:
            self.next_machine[job] = -1
            self.next_duration[job] = 0
            self.earliest_start[job] = _NEVER
        for other in np.flatnonzero(self.next_machine == machine):
            self.earliest_start[other] = self._fit(int(other))
        if op + 1 < n_ops and self.next_machine[job] != machine:
            self.earliest_start[job] = self._fit(job)
        return start, end

    def solution(self) -> JobShopSolution:
        """The schedule built so far (complete once :attr:`done`)."""
        return JobShopSolution(self.instance.name, self.start_times.copy(), list(self.machine_downtime))

    # ----------------------------------------------------------------------------------------------- internals
    def _fit(self, job: int) -> int:
        """Earliest start of ``job``'s next operation: the first idle gap on its machine, at or after the job is
        ready, that is long enough."""
        machine = int(self.next_machine[job])
        ready = int(self.job_ready[job])
        duration = int(self.next_duration[job])
        count = int(self.machine_count[machine])
        if count == 0:
            return ready
        ends = self.machine_ends[machine, :count]
        if ready >= ends[-1]:
            return ready
        starts = self.machine_starts[machine, :count]
        gap_begin = np.maximum(np.concatenate(([0], ends)), ready)
        gap_end = np.concatenate((starts, [_NEVER]))
        first_fit = int(np.argmax(gap_begin + duration <= gap_end))
        return int(gap_begin[first_fit])

    def _insert(self, machine: int, start: int, end: int, op_id: int) -> None:
        count = int(self.machine_count[machine])
        at = int(np.searchsorted(self.machine_starts[machine, :count], start))
        for row, value in ((self.machine_starts, start), (self.machine_ends, end), (self.machine_ops, op_id)):
            row[machine, at + 1 : count + 1] = row[machine, at:count]
            row[machine, at] = value
        self.machine_count[machine] = count + 1
        if op_id >= 0:
            ops = self.machine_ops[machine, : count + 1]
            before = ops[:at][ops[:at] >= 0]
            self.machine_pred[op_id] = before[-1] if before.size else -1
            after = ops[at + 1 :][ops[at + 1 :] >= 0]
            if after.size:
                self.machine_pred[after[0]] = op_id
