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

import numpy as np

from schedgym.envs.socdag import kernels
from schedgym.envs.socdag.instance import SocDagInstance, topological_order
from schedgym.envs.socdag.kernels import READY
from schedgym.envs.socdag.solution import SocDagSolution

#: Tasks a PE may hold (running one included) unless told otherwise: enough that a busy accelerator can be
#: queued for instead of spilling its work onto a slow core (with 2, every online rule degrades sharply under load).
DEFAULT_QUEUE_CAPACITY = 8
#: The queue capacity of late binding: a PE holds only the task it runs.
LATE_BINDING_CAPACITY = 1


class SocDagSimulator:
    """State of one run: the arrays of :class:`~schedgym.envs.socdag.kernels.SocDagState` (``state``), advanced by
    the compiled kernels of :mod:`schedgym.envs.socdag.kernels` (the batched engine runs the same ones).

    Attributes (views of ``state``, indexed by global task id or PE id):
        now_us: the current decision time.
        ready: ready tasks not yet committed, in the order they became ready.
        status: int8 ``[n_tasks]``: WAITING, READY, COMMITTED (queued or running) or DONE.
        pe, start_us, end_us: per task, -1 / NaN until known.
        data_ready_us: float ``[n_tasks, n_pes]``: when the task's input data is on each PE (set once ready).
        queue_length: int ``[n_pes]``: committed unfinished tasks per PE.
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
        self.supported = instance.supported()
        self.tables = kernels.allocate_tables((), instance.n_tasks, instance.n_pes, instance.n_jobs, len(instance.edges))
        kernels.fill_tables(self.tables, instance)
        self.state = kernels.allocate_state((), instance.n_tasks, instance.n_pes, instance.n_jobs, queue_capacity)
        state = self.state
        self.status, self.pe, self.start_us, self.end_us = state.status, state.pe, state.start_us, state.end_us
        self.data_ready_us, self.queue_length = state.data_ready_us, state.queue_length
        self.pe_free_expected_us, self.job_work_left_us = state.pe_free_expected_us, state.job_work_left_us
        kernels.reset_run(self.tables, state, queue_capacity)

    # ------------------------------------------------------------------------------------------------ queries
    @property
    def now_us(self) -> float:
        return float(self.state.clock_us[kernels.NOW])

    @property
    def job_time_us(self) -> float:
        return float(self.state.clock_us[kernels.JOB_TIME])

    @property
    def jobs_in_system(self) -> int:
        return int(self.state.counts[kernels.IN_SYSTEM])

    @property
    def n_done(self) -> int:
        return int(self.state.counts[kernels.N_DONE])

    @property
    def n_decisions(self) -> int:
        return int(self.state.counts[kernels.N_DECISIONS])

    @property
    def ready(self) -> list[int]:
        return self.state.ready[: self.state.counts[kernels.N_READY]].tolist()

    @property
    def done(self) -> bool:
        return self.n_done == self.instance.n_tasks

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
        return bool(kernels.has_event(self.tables, self.state))

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
        kernels.commit(self.tables, self.state, self.queue_capacity, task, pe)

    def wait(self) -> None:
        """Commit nothing now: run the events of the next event time, then on to the next decision.

        Raises:
            ValueError: if no event is left to wait for (a ready task must then be committed).
        """
        if not self.can_wait:
            raise ValueError(f"nothing to wait for at {self.now_us:g} us: no event is left; commit one of the ready tasks {self.ready}")
        kernels.wait(self.tables, self.state, self.queue_capacity)


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
