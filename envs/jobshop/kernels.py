"""The compiled scheduling logic of the job shop: the only place where operations are placed.

:class:`~schedgym.envs.jobshop.simulator.JobShopSimulator` (one schedule) and
:class:`~schedgym.envs.jobshop.batched.JobShopBatch` (B schedules in stacked arrays) both hold their state as numpy
arrays and call these functions on them; the batched engine passes one slot's views (``array[b]``) from inside the
compiled loop :func:`step_batch`, so a batch step is one call from Python.

Compiled with numba (``cache=True``: compiled once per machine, then loaded from ``__pycache__``). numba rather than
a C extension or Cython: the kernels stay Python source that a newcomer reads, the package stays pure Python to
install, and loops over a machine's few dozen operations are what numba compiles best.

State arrays of one schedule (J jobs, O operation columns, M machines, C slots per machine; an instance smaller
than the arrays leaves the extra rows and columns as padding that no kernel touches):

* ``next_op`` int64 ``[J]``: each job's next unscheduled operation (``n_ops`` when done).
* ``job_ready`` int64 ``[J]``: completion time of each job's last scheduled operation.
* ``next_machine`` / ``next_duration`` int64 ``[J]``: machine and duration of that next operation (-1 / 0 when done).
* ``earliest_start`` int64 ``[J]``: earliest start of the next operation on its machine (:data:`NEVER` when done).
* ``start_times`` int64 ``[J, O]``: start of every scheduled operation, -1 if not scheduled yet.
* ``machine_starts`` / ``machine_ends`` / ``machine_ops`` int64 ``[M, C]``: per machine, its blocks in time order
  (``machine_count[m]`` used); ops hold the flat operation id ``job * O + op``, or -1 for a downtime block.
* ``machine_pred`` int64 ``[J * O]``: flat id of the operation just before each scheduled operation on its machine.
* ``machine_work_left`` int64 ``[M]``: unscheduled work per machine.
* ``progress`` int64 ``[2]``: ``(makespan, n_scheduled)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Sentinel time: the earliest start of a finished job, and the end of a machine's last idle gap.
NEVER = np.iinfo(np.int64).max // 4
#: The codes of the action filters, in the order of :data:`schedgym.envs.jobshop.simulator.ACTION_FILTERS`.
LEGAL, GIFFLER_THOMPSON, NON_DELAY = 0, 1, 2


@njit(cache=True)
def earliest_fit(starts, ends, count, ready, duration):
    """Earliest start >= ``ready`` of an operation of ``duration`` on a machine whose ``count`` blocks are
    ``starts[:count]`` / ``ends[:count]``: the first idle gap long enough (a left-shift insertion), else after the
    last block."""
    if count == 0 or ready >= ends[count - 1]:
        return ready
    gap_begin = 0
    for k in range(count):
        begin = max(gap_begin, ready)
        if begin + duration <= starts[k]:
            return begin
        gap_begin = ends[k]
    return max(gap_begin, ready)


@njit(cache=True)
def insert_block(machine_starts, machine_ends, machine_ops, machine_count, machine_pred, machine, start, end, op_id):
    """Insert the block ``[start, end)`` of operation ``op_id`` (-1: downtime) on ``machine``, keeping time order and
    the machine predecessors of it and of the next real operation up to date."""
    count = machine_count[machine]
    at = 0
    while at < count and machine_starts[machine, at] < start:
        at += 1
    for k in range(count, at, -1):
        machine_starts[machine, k] = machine_starts[machine, k - 1]
        machine_ends[machine, k] = machine_ends[machine, k - 1]
        machine_ops[machine, k] = machine_ops[machine, k - 1]
    machine_starts[machine, at] = start
    machine_ends[machine, at] = end
    machine_ops[machine, at] = op_id
    machine_count[machine] = count + 1
    if op_id < 0:
        return
    pred = -1
    for k in range(at - 1, -1, -1):
        if machine_ops[machine, k] >= 0:
            pred = machine_ops[machine, k]
            break
    machine_pred[op_id] = pred
    for k in range(at + 1, count + 1):
        if machine_ops[machine, k] >= 0:
            machine_pred[machine_ops[machine, k]] = op_id
            break


@njit(cache=True)
def reset_schedule(
    n_jobs, n_ops, machines, durations, down_machine, down_start, down_end,
    next_op, job_ready, next_machine, next_duration, earliest_start, start_times,
    machine_starts, machine_ends, machine_ops, machine_count, machine_pred, machine_work_left, progress,
):
    """Empty schedule of the instance ``machines[:n_jobs, :n_ops]`` / ``durations`` (int64 ``[J, O]``) with the
    downtime blocks ``down_machine[k]``, ``[down_start[k], down_end[k])``; padding rows become finished jobs."""
    next_op[:] = n_ops
    job_ready[:] = 0
    next_machine[:] = -1
    next_duration[:] = 0
    earliest_start[:] = NEVER
    start_times[:] = -1
    machine_starts[:] = NEVER
    machine_ends[:] = NEVER
    machine_ops[:] = -1
    machine_count[:] = 0
    machine_pred[:] = -1
    machine_work_left[:] = 0
    progress[:] = 0
    for j in range(n_jobs):
        next_op[j] = 0
        next_machine[j] = machines[j, 0]
        next_duration[j] = durations[j, 0]
        for o in range(n_ops):
            machine_work_left[machines[j, o]] += durations[j, o]
    for k in range(len(down_machine)):
        insert_block(machine_starts, machine_ends, machine_ops, machine_count, machine_pred, down_machine[k], down_start[k], down_end[k], -1)
    for j in range(n_jobs):
        m = next_machine[j]
        earliest_start[j] = earliest_fit(machine_starts[m], machine_ends[m], machine_count[m], 0, next_duration[j])


@njit(cache=True)
def dispatch(
    job, n_ops, machines, durations,
    next_op, job_ready, next_machine, next_duration, earliest_start, start_times,
    machine_starts, machine_ends, machine_ops, machine_count, machine_pred, machine_work_left, progress,
):
    """Schedule the next operation of ``job`` (which must have one) at its earliest start; returns its start.

    Only the jobs whose next operation waits on the same machine, and ``job`` itself, get a new earliest start."""
    stride = start_times.shape[1]
    op = next_op[job]
    machine = next_machine[job]
    start = earliest_start[job]
    end = start + next_duration[job]
    insert_block(machine_starts, machine_ends, machine_ops, machine_count, machine_pred, machine, start, end, job * stride + op)
    start_times[job, op] = start
    job_ready[job] = end
    machine_work_left[machine] -= end - start
    progress[0] = max(progress[0], end)
    progress[1] += 1
    next_op[job] = op + 1
    if op + 1 < n_ops:
        next_machine[job] = machines[job, op + 1]
        next_duration[job] = durations[job, op + 1]
    else:
        next_machine[job] = -1
        next_duration[job] = 0
        earliest_start[job] = NEVER
    for other in range(len(next_machine)):
        if next_machine[other] == machine:
            earliest_start[other] = earliest_fit(machine_starts[machine], machine_ends[machine], machine_count[machine], job_ready[other], next_duration[other])
    nxt = next_machine[job]
    if nxt >= 0 and nxt != machine:
        earliest_start[job] = earliest_fit(machine_starts[nxt], machine_ends[nxt], machine_count[nxt], end, next_duration[job])
    return start


@njit(cache=True)
def candidates(filter_code, n_ops, next_op, next_machine, next_duration, earliest_start, out):
    """Write into bool ``out[J]`` the jobs a decision may choose under the action filter ``filter_code``
    (:data:`LEGAL`, :data:`GIFFLER_THOMPSON`, :data:`NON_DELAY`); returns how many there are."""
    n_legal = 0
    first = -1
    earliest = NEVER
    first_completion = NEVER
    for j in range(len(next_op)):
        out[j] = next_op[j] < n_ops
        if out[j]:
            n_legal += 1
            earliest = min(earliest, earliest_start[j])
            completion = earliest_start[j] + next_duration[j]
            if completion < first_completion:
                first, first_completion = j, completion
    if filter_code == LEGAL or n_legal == 0:
        return n_legal
    count = 0
    for j in range(len(next_op)):
        if out[j]:
            if filter_code == NON_DELAY:
                out[j] = earliest_start[j] == earliest
            else:
                out[j] = next_machine[j] == next_machine[first] and earliest_start[j] < first_completion
            count += out[j]
    return count


@njit(cache=True)
def settle(
    filter_code, skip_forced, n_jobs, n_ops, machines, durations,
    next_op, job_ready, next_machine, next_duration, earliest_start, start_times,
    machine_starts, machine_ends, machine_ops, machine_count, machine_pred, machine_work_left, progress, candidate,
):
    """Write the candidates of the current state into bool ``candidate[J]``; with ``skip_forced``, first dispatch
    by itself while they are a single job and more than one operation is left. Returns how many there are."""
    while True:
        count = candidates(filter_code, n_ops, next_op, next_machine, next_duration, earliest_start, candidate)
        if not skip_forced or count != 1 or n_jobs * n_ops - progress[1] <= 1:
            return count
        dispatch(
            np.argmax(candidate), n_ops, machines, durations, next_op, job_ready, next_machine, next_duration,
            earliest_start, start_times, machine_starts, machine_ends, machine_ops, machine_count, machine_pred,
            machine_work_left, progress,
        )


@njit(cache=True, parallel=True)
def step_batch(
    actions, filter_code, skip_forced, n_jobs, n_ops, machines, durations,
    next_op, job_ready, next_machine, next_duration, earliest_start, start_times,
    machine_starts, machine_ends, machine_ops, machine_count, machine_pred, machine_work_left, progress, candidate,
):
    """Dispatch ``actions[b]`` in every slot b of a batch (arrays with a leading ``[B]`` axis, actions already
    checked legal), then :func:`settle` each slot. Slots are independent: they run on numba's threads."""
    for b in prange(len(actions)):
        state = (
            next_op[b], job_ready[b], next_machine[b], next_duration[b], earliest_start[b], start_times[b],
            machine_starts[b], machine_ends[b], machine_ops[b], machine_count[b], machine_pred[b], machine_work_left[b], progress[b],
        )
        dispatch(actions[b], n_ops[b], machines[b], durations[b], *state)
        settle(filter_code, skip_forced, n_jobs[b], n_ops[b], machines[b], durations[b], *state, candidate[b])
