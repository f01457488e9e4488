"""The socdag event simulator: jobs arrive, ready tasks are committed to PEs, PEs run their queues in order.

One simulator serves the env, the online rules and the trained policy. A *decision* is the commitment of one ready
task (all parents finished) to one PE that supports it and whose queue has room (fewer than ``queue_capacity``
unfinished tasks, the running one included). A PE runs its queue first-in first-out; a task starts when the PE is
free and its parents' data has arrived (``data_ready_us``), and runs for its *actual* time, which the deciders
learn only when it ends: decisions use the expected times (EFT = earliest expected finish time).
Between decisions the simulator processes arrival and completion events in time order until a decision is
possible again (or everything has finished).

Two ways to bind tasks to PEs:

* *early binding* (``queue_capacity`` > 1, default 8): a task is committed as soon as it is ready, and waits in
  its PE's queue; commitments to one PE run in the order they were made.
* *late binding* (``queue_capacity=LATE_BINDING_CAPACITY``, 1): a PE holds only the task it runs, so a task is
  committed only to an idle PE; the decider may :meth:`SocDagSimulator.wait` instead, leaving the ready tasks
  uncommitted until the next event (a PE frees, a job arrives), and so choose the order in which tasks get PEs.

:func:`execute_plan` runs a static plan (PE and order per task, from HEFT, CPoP or CP-SAT) with the actual times.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from schedgym.envs.socdag.instance import SocDagInstance, topological_order
from schedgym.envs.socdag.solution import SocDagSolution

WAITING, READY, COMMITTED, DONE = 0, 1, 2, 3  # graphs/socdag.py reads COMMITTED and DONE too
#: Tasks a PE may hold (running one included) unless told otherwise: enough that a busy accelerator can be
#: queued for instead of spilling its work onto a slow core (with 2, every online rule degrades sharply under load).
DEFAULT_QUEUE_CAPACITY = 8
#: The queue capacity of late binding: a PE holds only the task it runs.
LATE_BINDING_CAPACITY = 1
_ARRIVAL, _FINISH = 0, 1


class SocDagSimulator:
    """State of one run; all arrays are indexed by global task id or PE id.

    Attributes:
        now_us: the current decision time.
        ready: ready tasks not yet committed, in the order they became ready.
        status: int8 ``[n_tasks]``: WAITING, READY, COMMITTED (queued or running) or DONE.
        pe, start_us, end_us: per task, -1 / NaN until known.
        data_ready_us: float ``[n_tasks, n_pes]``: when the task's input data is on each PE (set once ready).
        queues: per PE, its committed unfinished tasks (the head runs once started).
        pe_free_expected_us: float ``[n_pes]``: when each PE is expected to have run its queue.
        jobs_in_system: arrived jobs with a task left.
        job_work_left_us: float ``[n_jobs]``: per job, the fastest expected run times of its unfinished tasks, summed.
        job_time_us: sum over jobs of the time spent in the system so far (at the end: sum of job durations).
    """

    def __init__(self, instance: SocDagInstance, queue_capacity: int = DEFAULT_QUEUE_CAPACITY) -> None:
        if queue_capacity < 1:
            raise ValueError(f"queue_capacity must be >= 1, got {queue_capacity}")
        self.instance = instance
        self.queue_capacity = queue_capacity
        n, n_pes = instance.n_tasks, instance.n_pes
        self.supported = instance.supported()
        self.fastest_us = instance.expected_us.min(axis=1)  # expected_us is inf where a PE cannot run the task
        self.job_work_left_us = np.bincount(instance.task_job, weights=self.fastest_us, minlength=instance.n_jobs)
        self.in_edges: list[list[int]] = [[] for _ in range(n)]
        self.out_edges: list[list[int]] = [[] for _ in range(n)]
        for e, (parent, child) in enumerate(instance.edges.tolist()):
            self.out_edges[parent].append(e)
            self.in_edges[child].append(e)
        self.parents_left = [len(edges) for edges in self.in_edges]
        self.tasks_left = np.diff(instance.job_first_task).tolist()
        self.status = np.zeros(n, dtype=np.int8)
        self.pe = np.full(n, -1, dtype=np.int64)
        self.start_us = np.full(n, np.nan)
        self.end_us = np.full(n, np.nan)
        self.data_ready_us = np.zeros((n, n_pes))
        self.queues: list[deque[int]] = [deque() for _ in range(n_pes)]
        self.queue_length = np.zeros(n_pes, dtype=np.int64)
        self.pe_free_expected_us = np.zeros(n_pes)
        self.ready: list[int] = []
        self._ready_per_pe = np.zeros(n_pes, dtype=np.int64)  # ready tasks each PE supports
        self.now_us = 0.0
        self.jobs_in_system = 0
        self.job_time_us = 0.0
        self.n_done = 0
        self.n_decisions = 0
        self._jobs_arrived = 0
        self._oldest_job = 0
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = 0
        for job, arrival in enumerate(instance.arrival_us.tolist()):
            self._push(arrival, _ARRIVAL, job)
        self._advance()

    # ------------------------------------------------------------------------------------------------ queries
    @property
    def done(self) -> bool:
        return self.n_done == self.instance.n_tasks

    def jobs_in_flight(self) -> list[int]:
        """Arrived jobs with a task left, oldest first."""
        while self._oldest_job < self._jobs_arrived and self.tasks_left[self._oldest_job] == 0:
            self._oldest_job += 1
        return [j for j in range(self._oldest_job, self._jobs_arrived) if self.tasks_left[j] > 0]

    def pe_has_room(self) -> np.ndarray:
        """bool ``[n_pes]``: PEs that accept one more task."""
        return self.queue_length < self.queue_capacity

    def legal_pairs(self, tasks: list[int] | None = None) -> np.ndarray:
        """bool ``[len(tasks), n_pes]`` (default: the ready tasks): which (task, PE) commitments are allowed."""
        tasks = self.ready if tasks is None else tasks
        return self.supported[tasks] & self.pe_has_room()[None, :]

    def expected_finish_us(self, tasks: list[int] | None = None, legal_only: bool = True) -> np.ndarray:
        """Expected finish time ``[len(tasks), n_pes]`` of committing each task to each PE now; inf where illegal
        (``legal_only=False``: inf only where the PE cannot run the task; a busy PE's finish is then the one the
        task would reach if it waited for that PE)."""
        tasks = self.ready if tasks is None else tasks
        start = np.maximum(np.maximum(self.pe_free_expected_us, self.now_us)[None, :], self.data_ready_us[tasks])
        finish = start + self.instance.expected_us[tasks]
        allowed = self.legal_pairs(tasks) if legal_only else self.supported[tasks]
        return np.where(allowed, finish, np.inf)

    @property
    def can_wait(self) -> bool:
        """Whether :meth:`wait` is possible: an event (arrival or completion) is still to come."""
        return bool(self._events)

    def solution(self) -> SocDagSolution:
        return SocDagSolution(self.pe.copy(), self.start_us.copy(), self.end_us.copy())

    # ------------------------------------------------------------------------------------------------ decisions
    def commit(self, task: int, pe: int) -> None:
        """Commit ready ``task`` to ``pe``, then run events until the next decision (or the end).

        Raises:
            ValueError: if the task is not ready, the PE cannot run it, or its queue is full.
        """
        if not (0 <= task < self.instance.n_tasks) or self.status[task] != READY:
            raise ValueError(f"task {task} is not ready; the ready tasks are {self.ready}")
        if not (0 <= pe < self.instance.n_pes) or not self.supported[task, pe]:
            raise ValueError(f"PE {pe} cannot run task {task}; it runs on PEs {np.flatnonzero(self.supported[task]).tolist()}")
        if self.queue_length[pe] >= self.queue_capacity:
            raise ValueError(f"PE {pe} is busy (its queue holds {self.queue_capacity} tasks); choose a PE with room")
        self.ready.remove(task)
        self._ready_per_pe -= self.supported[task]
        self.status[task] = COMMITTED
        self.pe[task] = pe
        expected_start = max(self.now_us, self.pe_free_expected_us[pe], self.data_ready_us[task, pe])
        self.pe_free_expected_us[pe] = expected_start + self.instance.expected_us[task, pe]
        self.queues[pe].append(task)
        self.queue_length[pe] += 1
        if self.queue_length[pe] == 1:
            self._start(task, pe, self.now_us)
        self.n_decisions += 1
        self._advance()

    def wait(self) -> None:
        """Commit nothing now: run the events of the next event time, then on to the next decision.

        Raises:
            ValueError: if no event is left to wait for (a ready task must then be committed).
        """
        if not self.can_wait:
            raise ValueError(f"nothing to wait for at {self.now_us:g} us: no event is left; commit one of the ready tasks {self.ready}")
        self.n_decisions += 1
        self._run_next_event_time()
        self._advance()

    # ------------------------------------------------------------------------------------------------ events
    def _push(self, time_us: float, kind: int, item: int) -> None:
        heapq.heappush(self._events, (time_us, kind, self._sequence, item))
        self._sequence += 1

    def _start(self, task: int, pe: int, time_us: float) -> None:
        start = max(time_us, self.data_ready_us[task, pe])
        self.start_us[task] = start
        self.end_us[task] = start + self.instance.actual_us[task, pe]
        self._push(self.end_us[task], _FINISH, task)

    def _decision_possible(self) -> bool:
        return bool(self.ready) and bool(self._ready_per_pe[self.queue_length < self.queue_capacity].any())

    def _advance(self) -> None:
        """Process events in time order until a decision is possible or none is left."""
        while self._events and not self._decision_possible():
            self._run_next_event_time()

    def _run_next_event_time(self) -> None:
        """Move the clock to the next event time and process every event at it."""
        time_us = self._events[0][0]
        self.job_time_us += self.jobs_in_system * (time_us - self.now_us)
        self.now_us = time_us
        while self._events and self._events[0][0] == time_us:
            _, kind, _, item = heapq.heappop(self._events)
            if kind == _ARRIVAL:
                self._arrive(item)
            else:
                self._finish(item)

    def _arrive(self, job: int) -> None:
        self.jobs_in_system += 1
        self._jobs_arrived = job + 1
        first, last = self.instance.job_first_task[job], self.instance.job_first_task[job + 1]
        for task in range(first, last):
            if self.parents_left[task] == 0:
                self._make_ready(task)

    def _make_ready(self, task: int) -> None:
        inst = self.instance
        ready_at = np.full(inst.n_pes, inst.arrival_us[inst.task_job[task]])
        for e in self.in_edges[task]:
            parent = inst.edges[e, 0]
            transfer = inst.edge_bytes[e] / inst.soc.bandwidth_bytes_per_us[self.pe[parent]]
            transfer[self.pe[parent]] = 0.0
            np.maximum(ready_at, self.end_us[parent] + transfer, out=ready_at)
        self.data_ready_us[task] = ready_at
        self.status[task] = READY
        self.ready.append(task)
        self._ready_per_pe += self.supported[task]

    def _finish(self, task: int) -> None:
        inst = self.instance
        self.status[task] = DONE
        self.n_done += 1
        pe = self.pe[task]
        queue = self.queues[pe]
        queue.popleft()
        self.queue_length[pe] -= 1
        free_us = self.now_us
        if queue:
            self._start(queue[0], pe, self.now_us)
            for position, queued in enumerate(queue):
                begin = self.start_us[queued] if position == 0 else max(free_us, self.data_ready_us[queued, pe])
                free_us = max(free_us, begin + inst.expected_us[queued, pe])
        self.pe_free_expected_us[pe] = free_us
        for e in self.out_edges[task]:
            child = inst.edges[e, 1]
            self.parents_left[child] -= 1
            if self.parents_left[child] == 0:
                self._make_ready(child)
        job = inst.task_job[task]
        self.job_work_left_us[job] -= self.fastest_us[task]
        self.tasks_left[job] -= 1
        if self.tasks_left[job] == 0:
            self.jobs_in_system -= 1


def execute_plan(instance: SocDagInstance, pe: np.ndarray, planned_start_us: np.ndarray) -> SocDagSolution:
    """Run a static plan with the actual run times: every task on its planned PE, each PE taking its tasks in
    planned-start order, a task starting as soon as its job has arrived, its PE is free and its data is there.

    Args:
        pe: int ``[n_tasks]``, planned PE per task.
        planned_start_us: float ``[n_tasks]``, planned start times (only their order matters; it must respect the
            precedence constraints, as any feasible plan's does).
    """
    n = instance.n_tasks
    order_position = np.empty(n, dtype=np.int64)
    order_position[topological_order(n, instance.edges)] = np.arange(n)
    order = np.lexsort((order_position, planned_start_us))
    in_edges: list[list[int]] = [[] for _ in range(n)]
    for e, child in enumerate(instance.edges[:, 1].tolist()):
        in_edges[child].append(e)
    pe_free = np.zeros(instance.n_pes)
    start = np.zeros(n)
    end = np.zeros(n)
    for task in order.tolist():
        p = int(pe[task])
        begin = max(instance.arrival_us[instance.task_job[task]], pe_free[p])
        for e in in_edges[task]:
            parent = instance.edges[e, 0]
            begin = max(begin, end[parent] + float(instance.transfer_us(instance.edge_bytes[e], pe[parent], p)))
        start[task] = begin
        end[task] = begin + instance.actual_us[task, p]
        pe_free[p] = end[task]
    return SocDagSolution(np.asarray(pe, dtype=np.int64).copy(), start, end)
