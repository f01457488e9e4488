"""The compiled event logic of socdag: the only place where tasks are committed, started and finished.

:class:`~schedgym.envs.socdag.simulator.SocDagSimulator` (one run, so every online rule and ``SocDagEnv``) and
:class:`~schedgym.envs.socdag.batched.SocDagBatch` (B runs in stacked arrays) hold their state as the numpy arrays
of :class:`SocDagTables` and :class:`SocDagState` and call these functions on them; the batched engine passes one
slot's views (built by :func:`slot_tables` / :func:`slot_state`) from inside the compiled loop :func:`step_batch`.

Compiled with numba (``cache=True``), as the job-shop kernels are: the event loop stays Python source a newcomer
reads, and the package stays pure Python to install.

Events need no heap: jobs arrive in the order of their (non-decreasing) arrival times, and each PE has at most one
task in flight, the head of its queue. The next event is the earliest of the next arrival and the PEs' head
finishes; at equal times arrivals come first, then finishes in the order their tasks started (the order a heap of
``(time, kind, sequence)`` would pop them).

Sizes: N tasks, P PEs, J jobs, E DAG edges, Q the queue capacity. Arrays may be larger than the instance (the
batched engine pads every slot to the largest); ``sizes`` says how much of them is real.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

WAITING, READY, COMMITTED, DONE = 0, 1, 2, 3
#: ``SocDagState.clock_us`` fields.
NOW, JOB_TIME = 0, 1
#: ``SocDagState.counts`` fields: jobs in the system, finished tasks, decisions taken, jobs arrived, the oldest job
#: that may still have a task left, the next start sequence number, ready tasks not yet committed.
IN_SYSTEM, N_DONE, N_DECISIONS, ARRIVED, OLDEST, SEQUENCE, N_READY = range(7)
N_COUNTS = 7


class SocDagTables(NamedTuple):
    """The instance, as the kernels read it (fixed for a run).

    Attributes:
        sizes: int64 ``[3]``: (n_tasks, n_pes, n_jobs).
        expected_us / actual_us: float ``[N, P]``: expected and actual run time per (task, PE); inf where the PE
            cannot run the task.
        supported: bool ``[N, P]``: which PEs can run each task.
        fastest_us: float ``[N]``: fastest expected run time per task.
        task_job: int64 ``[N]``; job_first_task: int64 ``[J + 1]``: jobs are contiguous task ranges.
        arrival_us: float ``[J]``, non-decreasing.
        edge_parent / edge_child: int64 ``[E]``; edge_bytes: float ``[E]``: data sent along each DAG edge.
        in_start / in_edges: int64 ``[N + 1]`` / ``[E]``: task t's incoming edges are
            ``in_edges[in_start[t]:in_start[t + 1]]`` (and ``out_start`` / ``out_edges`` its outgoing ones), in
            edge order.
        bandwidth_bytes_per_us: float ``[P, P]``: link bandwidth from PE to PE.
    """

    sizes: np.ndarray
    expected_us: np.ndarray
    actual_us: np.ndarray
    supported: np.ndarray
    fastest_us: np.ndarray
    task_job: np.ndarray
    job_first_task: np.ndarray
    arrival_us: np.ndarray
    edge_parent: np.ndarray
    edge_child: np.ndarray
    edge_bytes: np.ndarray
    in_start: np.ndarray
    in_edges: np.ndarray
    out_start: np.ndarray
    out_edges: np.ndarray
    bandwidth_bytes_per_us: np.ndarray


class SocDagState(NamedTuple):
    """The state of one run.

    Attributes:
        status: int8 ``[N]``: WAITING, READY, COMMITTED (queued or running) or DONE.
        pe: int64 ``[N]``: the PE a task is committed to, -1 before.
        start_us / end_us: float ``[N]``: actual start and end, NaN until the task starts.
        data_ready_us: float ``[N, P]``: when a task's input data is on each PE (set once it is ready).
        parents_left: int64 ``[N]``: unfinished parents per task.
        tasks_left: int64 ``[J]``: unfinished tasks per job.
        job_work_left_us: float ``[J]``: per job, the fastest expected run times of its unfinished tasks, summed.
        queue: int64 ``[P, Q]``: per PE its committed unfinished tasks, first-in first-out (``queue_length`` used);
            the head has started.
        queue_length: int64 ``[P]``.
        pe_free_expected_us: float ``[P]``: when each PE is expected to have run its queue.
        head_sequence: int64 ``[P]``: start sequence number of each PE's head (orders simultaneous finishes).
        ready: int64 ``[N]``: ready uncommitted tasks, in the order they became ready (``counts[N_READY]`` used).
        ready_per_pe: int64 ``[P]``: ready tasks each PE supports.
        clock_us: float ``[2]``: (now, job time accrued: jobs in the system x elapsed time, summed).
        counts: int64 ``[N_COUNTS]``: see the ``IN_SYSTEM`` ... ``N_READY`` constants.
    """

    status: np.ndarray
    pe: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    data_ready_us: np.ndarray
    parents_left: np.ndarray
    tasks_left: np.ndarray
    job_work_left_us: np.ndarray
    queue: np.ndarray
    queue_length: np.ndarray
    pe_free_expected_us: np.ndarray
    head_sequence: np.ndarray
    ready: np.ndarray
    ready_per_pe: np.ndarray
    clock_us: np.ndarray
    counts: np.ndarray


def allocate_tables(prefix: tuple[int, ...], n_tasks: int, n_pes: int, n_jobs: int, n_edges: int) -> SocDagTables:
    """Empty tables of the given capacities, with leading axes ``prefix`` (``()`` for one run, ``(B,)`` for a batch)."""
    N, P, J, E = n_tasks, n_pes, n_jobs, n_edges
    return SocDagTables(
        sizes=np.zeros(prefix + (3,), dtype=np.int64),
        expected_us=np.full(prefix + (N, P), np.inf),
        actual_us=np.full(prefix + (N, P), np.inf),
        supported=np.zeros(prefix + (N, P), dtype=bool),
        fastest_us=np.zeros(prefix + (N,)),
        task_job=np.zeros(prefix + (N,), dtype=np.int64),
        job_first_task=np.zeros(prefix + (J + 1,), dtype=np.int64),
        arrival_us=np.zeros(prefix + (J,)),
        edge_parent=np.zeros(prefix + (E,), dtype=np.int64),
        edge_child=np.zeros(prefix + (E,), dtype=np.int64),
        edge_bytes=np.zeros(prefix + (E,)),
        in_start=np.zeros(prefix + (N + 1,), dtype=np.int64),
        in_edges=np.zeros(prefix + (E,), dtype=np.int64),
        out_start=np.zeros(prefix + (N + 1,), dtype=np.int64),
        out_edges=np.zeros(prefix + (E,), dtype=np.int64),
        bandwidth_bytes_per_us=np.ones(prefix + (P, P)),
    )


def allocate_state(prefix: tuple[int, ...], n_tasks: int, n_pes: int, n_jobs: int, queue_capacity: int) -> SocDagState:
    """Empty state of the given capacities (see :func:`allocate_tables`); :func:`reset_run` fills it."""
    N, P, J, Q = n_tasks, n_pes, n_jobs, queue_capacity
    return SocDagState(
        status=np.zeros(prefix + (N,), dtype=np.int8),
        pe=np.full(prefix + (N,), -1, dtype=np.int64),
        start_us=np.full(prefix + (N,), np.nan),
        end_us=np.full(prefix + (N,), np.nan),
        data_ready_us=np.zeros(prefix + (N, P)),
        parents_left=np.zeros(prefix + (N,), dtype=np.int64),
        tasks_left=np.zeros(prefix + (J,), dtype=np.int64),
        job_work_left_us=np.zeros(prefix + (J,)),
        queue=np.zeros(prefix + (P, Q), dtype=np.int64),
        queue_length=np.zeros(prefix + (P,), dtype=np.int64),
        pe_free_expected_us=np.zeros(prefix + (P,)),
        head_sequence=np.zeros(prefix + (P,), dtype=np.int64),
        ready=np.zeros(prefix + (N,), dtype=np.int64),
        ready_per_pe=np.zeros(prefix + (P,), dtype=np.int64),
        clock_us=np.zeros(prefix + (2,)),
        counts=np.zeros(prefix + (N_COUNTS,), dtype=np.int64),
    )


def fill_tables(tables: SocDagTables, instance) -> None:
    """Write ``instance`` (a :class:`~schedgym.envs.socdag.instance.SocDagInstance`) into one run's ``tables``
    (arrays at least as large as it; the rest is reset to padding)."""
    n, n_pes, n_jobs, n_edges = instance.n_tasks, instance.n_pes, instance.n_jobs, len(instance.edges)
    tables.sizes[:] = (n, n_pes, n_jobs)
    tables.expected_us[:] = np.inf
    tables.actual_us[:] = np.inf
    tables.supported[:] = False
    tables.bandwidth_bytes_per_us[:] = 1.0
    tables.expected_us[:n, :n_pes] = instance.expected_us
    tables.actual_us[:n, :n_pes] = instance.actual_us
    tables.supported[:n, :n_pes] = instance.supported()
    tables.fastest_us[:n] = instance.expected_us.min(axis=1)
    tables.task_job[:n] = instance.task_job
    tables.job_first_task[: n_jobs + 1] = instance.job_first_task
    tables.arrival_us[:n_jobs] = instance.arrival_us
    parent, child = instance.edges[:, 0], instance.edges[:, 1]
    tables.edge_parent[:n_edges] = parent
    tables.edge_child[:n_edges] = child
    tables.edge_bytes[:n_edges] = instance.edge_bytes
    for start, edges, endpoint in ((tables.in_start, tables.in_edges, child), (tables.out_start, tables.out_edges, parent)):
        start[: n + 1] = np.concatenate(([0], np.cumsum(np.bincount(endpoint, minlength=n))))
        edges[:n_edges] = np.argsort(endpoint, kind="stable")
    tables.bandwidth_bytes_per_us[:n_pes, :n_pes] = instance.soc.bandwidth_bytes_per_us


# ---------------------------------------------------------------------------------------------------- one run
@njit(cache=True)
def reset_run(tables, state, queue_capacity):
    """Time 0 of the run: nothing arrived, nothing committed; then events up to the first decision."""
    n_tasks, n_pes, n_jobs = tables.sizes[0], tables.sizes[1], tables.sizes[2]
    for t in range(n_tasks):
        state.status[t] = WAITING
        state.pe[t] = -1
        state.start_us[t] = np.nan
        state.end_us[t] = np.nan
        state.data_ready_us[t, :] = 0.0
        state.parents_left[t] = tables.in_start[t + 1] - tables.in_start[t]
    for j in range(n_jobs):
        state.tasks_left[j] = tables.job_first_task[j + 1] - tables.job_first_task[j]
        state.job_work_left_us[j] = 0.0
    for t in range(n_tasks):
        state.job_work_left_us[tables.task_job[t]] += tables.fastest_us[t]
    state.queue_length[:] = 0
    state.pe_free_expected_us[:] = 0.0
    state.ready_per_pe[:] = 0
    state.clock_us[:] = 0.0
    state.counts[:] = 0
    advance(tables, state, queue_capacity)


@njit(cache=True)
def has_event(tables, state):
    """Whether an event (an arrival or a finish) is still to come."""
    if state.counts[ARRIVED] < tables.sizes[2]:
        return True
    for p in range(tables.sizes[1]):
        if state.queue_length[p] > 0:
            return True
    return False


@njit(cache=True)
def decision_possible(tables, state, queue_capacity):
    """Whether a ready task has a PE with room."""
    if state.counts[N_READY] == 0:
        return False
    for p in range(tables.sizes[1]):
        if state.queue_length[p] < queue_capacity and state.ready_per_pe[p] > 0:
            return True
    return False


@njit(cache=True)
def commit(tables, state, queue_capacity, task, pe):
    """Commit ready ``task`` to ``pe`` (checked legal by the caller), then run events until the next decision."""
    ready, n_ready = state.ready, state.counts[N_READY]
    at = 0
    while ready[at] != task:
        at += 1
    for k in range(at, n_ready - 1):
        ready[k] = ready[k + 1]
    state.counts[N_READY] = n_ready - 1
    for p in range(tables.sizes[1]):
        state.ready_per_pe[p] -= tables.supported[task, p]
    state.status[task] = COMMITTED
    state.pe[task] = pe
    now = state.clock_us[NOW]
    expected_start = max(now, state.pe_free_expected_us[pe], state.data_ready_us[task, pe])
    state.pe_free_expected_us[pe] = expected_start + tables.expected_us[task, pe]
    length = state.queue_length[pe]
    state.queue[pe, length] = task
    state.queue_length[pe] = length + 1
    if length == 0:
        _start(tables, state, task, pe, now)
    state.counts[N_DECISIONS] += 1
    advance(tables, state, queue_capacity)


@njit(cache=True)
def wait(tables, state, queue_capacity):
    """Commit nothing: run the events of the next event time (one must be left), then on to the next decision."""
    state.counts[N_DECISIONS] += 1
    _run_next_event_time(tables, state)
    advance(tables, state, queue_capacity)


@njit(cache=True)
def advance(tables, state, queue_capacity):
    """Process events in time order until a decision is possible or none is left."""
    while has_event(tables, state) and not decision_possible(tables, state, queue_capacity):
        _run_next_event_time(tables, state)


@njit(cache=True)
def _next_event(tables, state):
    """(time, kind, item) of the next event: kind 0 = arrival of job ``item``, 1 = finish on PE ``item``; kind -1
    when none is left."""
    time, kind, item, sequence = np.inf, -1, -1, 0
    if state.counts[ARRIVED] < tables.sizes[2]:
        time, kind, item = tables.arrival_us[state.counts[ARRIVED]], 0, state.counts[ARRIVED]
    for p in range(tables.sizes[1]):
        if state.queue_length[p] == 0:
            continue
        end = state.end_us[state.queue[p, 0]]
        if kind < 0 or end < time or (end == time and kind == 1 and state.head_sequence[p] < sequence):
            time, kind, item, sequence = end, 1, p, state.head_sequence[p]
    return time, kind, item


@njit(cache=True)
def _run_next_event_time(tables, state):
    time, kind, item = _next_event(tables, state)
    state.clock_us[JOB_TIME] += state.counts[IN_SYSTEM] * (time - state.clock_us[NOW])
    state.clock_us[NOW] = time
    while kind >= 0 and time == state.clock_us[NOW]:
        if kind == 0:
            _arrive(tables, state, item)
        else:
            _finish(tables, state, item)
        time, kind, item = _next_event(tables, state)


@njit(cache=True)
def _start(tables, state, task, pe, time_us):
    start = max(time_us, state.data_ready_us[task, pe])
    state.start_us[task] = start
    state.end_us[task] = start + tables.actual_us[task, pe]
    state.head_sequence[pe] = state.counts[SEQUENCE]
    state.counts[SEQUENCE] += 1


@njit(cache=True)
def _arrive(tables, state, job):
    state.counts[IN_SYSTEM] += 1
    state.counts[ARRIVED] = job + 1
    for task in range(tables.job_first_task[job], tables.job_first_task[job + 1]):
        if state.parents_left[task] == 0:
            _make_ready(tables, state, task)


@njit(cache=True)
def _make_ready(tables, state, task):
    n_pes = tables.sizes[1]
    arrival = tables.arrival_us[tables.task_job[task]]
    for p in range(n_pes):
        state.data_ready_us[task, p] = arrival
    for k in range(tables.in_start[task], tables.in_start[task + 1]):
        e = tables.in_edges[k]
        parent = tables.edge_parent[e]
        source = state.pe[parent]
        for p in range(n_pes):
            transfer = 0.0 if p == source else tables.edge_bytes[e] / tables.bandwidth_bytes_per_us[source, p]
            state.data_ready_us[task, p] = max(state.data_ready_us[task, p], state.end_us[parent] + transfer)
    state.status[task] = READY
    state.ready[state.counts[N_READY]] = task
    state.counts[N_READY] += 1
    for p in range(n_pes):
        state.ready_per_pe[p] += tables.supported[task, p]


@njit(cache=True)
def _finish(tables, state, pe):
    task = state.queue[pe, 0]
    now = state.clock_us[NOW]
    state.status[task] = DONE
    state.counts[N_DONE] += 1
    length = state.queue_length[pe] - 1
    for k in range(length):
        state.queue[pe, k] = state.queue[pe, k + 1]
    state.queue_length[pe] = length
    free_us = now
    if length > 0:
        _start(tables, state, state.queue[pe, 0], pe, now)
        for position in range(length):
            queued = state.queue[pe, position]
            begin = state.start_us[queued] if position == 0 else max(free_us, state.data_ready_us[queued, pe])
            free_us = max(free_us, begin + tables.expected_us[queued, pe])
    state.pe_free_expected_us[pe] = free_us
    for k in range(tables.out_start[task], tables.out_start[task + 1]):
        child = tables.edge_child[tables.out_edges[k]]
        state.parents_left[child] -= 1
        if state.parents_left[child] == 0:
            _make_ready(tables, state, child)
    job = tables.task_job[task]
    state.job_work_left_us[job] -= tables.fastest_us[task]
    state.tasks_left[job] -= 1
    if state.tasks_left[job] == 0:
        state.counts[IN_SYSTEM] -= 1


# ---------------------------------------------------------------------------------------------------- batches
@njit(cache=True)
def slot_tables(tables, b):
    """Slot ``b``'s views of batched tables (arrays with a leading ``[B]`` axis)."""
    return SocDagTables(
        tables.sizes[b], tables.expected_us[b], tables.actual_us[b], tables.supported[b], tables.fastest_us[b],
        tables.task_job[b], tables.job_first_task[b], tables.arrival_us[b], tables.edge_parent[b], tables.edge_child[b],
        tables.edge_bytes[b], tables.in_start[b], tables.in_edges[b], tables.out_start[b], tables.out_edges[b],
        tables.bandwidth_bytes_per_us[b],
    )


@njit(cache=True)
def slot_state(state, b):
    """Slot ``b``'s views of a batched state."""
    return SocDagState(
        state.status[b], state.pe[b], state.start_us[b], state.end_us[b], state.data_ready_us[b], state.parents_left[b],
        state.tasks_left[b], state.job_work_left_us[b], state.queue[b], state.queue_length[b],
        state.pe_free_expected_us[b], state.head_sequence[b], state.ready[b], state.ready_per_pe[b], state.clock_us[b],
        state.counts[b],
    )


@njit(cache=True, parallel=True)
def step_batch(tables, state, queue_capacity, tasks, pes):
    """In every slot b, commit ``tasks[b]`` to ``pes[b]``, or wait where ``tasks[b]`` is -1 (moves already checked
    legal). Slots are independent: they run on numba's threads."""
    for b in prange(len(tasks)):
        run_tables, run_state = slot_tables(tables, b), slot_state(state, b)
        if tasks[b] < 0:
            wait(run_tables, run_state, queue_capacity)
        else:
            commit(run_tables, run_state, queue_capacity, tasks[b], pes[b])
