"""The compiled logic of the blocking job shop with swaps and machine shutdowns: the only place where its
operations are started, machines released and time advanced (:class:`~schedgym.envs.jobshop.blocking.BlockingJobShopSimulator`
holds the arrays, the env, the rules and the batched engine call these functions).

The shop runs in time. A job holds the machine of its current operation from the operation's start until it starts
its next operation (blocking: there is no buffer between machines); its last operation releases the machine when it
completes. A job may start its next operation at time ``t`` when that machine is up and free, or when the jobs
blocked on a cycle of machines each want the machine the next one holds: the whole cycle then moves at ``t`` (a
swap). A shutdown interrupts the running operation, which resumes where it stopped once the machine is repaired
(preempt-resume); no operation starts on a machine that is down, and a finished job may leave a machine that is.

State arrays (J jobs, O operations per job, M machines, K shutdown slots per machine):

* ``next_op`` int64 ``[J]``: the job's next operation to start (``n_ops`` once its last one started).
* ``held`` int64 ``[J]``: the machine the job holds, -1 before its first start and after its last completion.
* ``busy_until`` int64 ``[J]``: completion time of the job's current operation (0 before the first start).
* ``holder`` int64 ``[M]``: the job holding each machine, -1 if free.
* ``down_start`` / ``down_end`` int64 ``[M, K]``: each machine's shutdown intervals ``[start, end)``, sorted and
  disjoint, ``down_count[m]`` used.
* ``start_times`` / ``end_times`` int64 ``[J, O]``: start and completion of each started operation, -1 before.
* ``machine_last`` int64 ``[M]``: flat id (``job * O + op``) of the last operation started on each machine, -1.
* ``machine_pred`` int64 ``[J * O]``: flat id of the operation started just before each one on its machine, -1.
* ``machine_work_left`` int64 ``[M]``: work of the operations not started yet, per machine.
* ``clock`` int64 ``[3]``: ``(now, makespan so far, jobs finished)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Sentinel time: no event.
NEVER = np.iinfo(np.int64).max // 4


@njit(cache=True)
def resume_end(start, duration, down_start, down_end, count):
    """Completion of an operation started at ``start`` (the machine up) needing ``duration`` units of work on a
    machine whose ``count`` shutdown intervals are ``down_start[:count]`` / ``down_end[:count]``: the work pauses
    during every shutdown it meets and resumes after it."""
    t = start
    left = duration
    for k in range(count):
        if down_end[k] <= t:
            continue
        if down_start[k] >= t + left:
            break
        left -= down_start[k] - t
        t = down_end[k]
    return t + left


@njit(cache=True)
def down_until(machine, now, down_start, down_end, down_count):
    """End of the shutdown of ``machine`` in progress at ``now``, or -1 if the machine is up."""
    for k in range(down_count[machine]):
        if down_start[machine, k] > now:
            return -1
        if now < down_end[machine, k]:
            return down_end[machine, k]
    return -1


@njit(cache=True)
def _movable_alone(job, now, n_ops, machines, next_op, held, busy_until, down_start, down_end, down_count):
    """The machine ``job`` would start its next operation on now, if it is free of processing and that machine is
    up; else -1 (whether the machine is free is the caller's question)."""
    if next_op[job] >= n_ops or (held[job] >= 0 and busy_until[job] > now):
        return -1
    target = machines[job, next_op[job]]
    if down_until(target, now, down_start, down_end, down_count) >= 0:
        return -1
    return target


@njit(cache=True)
def swap_cycle(job, now, n_ops, machines, next_op, held, busy_until, holder, down_start, down_end, down_count, cycle):
    """Length of the cycle of blocked jobs that ``job`` starts (each wanting the machine the next one holds, every
    one of those machines up), written into ``cycle`` in order; 0 if ``job`` is in none."""
    length = 0
    current = job
    for _ in range(len(next_op)):
        target = _movable_alone(current, now, n_ops, machines, next_op, held, busy_until, down_start, down_end, down_count)
        if target < 0 or held[current] < 0:
            return 0
        cycle[length] = current
        length += 1
        current = holder[target]
        if current < 0:
            return 0
        if current == job:
            return length
    return 0


@njit(cache=True)
def find_candidates(
    n_jobs, n_ops, machines, next_op, held, busy_until, holder, down_start, down_end, down_count, clock, candidate, cycle,
):
    """Write into bool ``candidate[J]`` the jobs that can move now: those whose next machine is up and free, and per
    swap cycle its lowest-numbered job (moving it moves the cycle). Returns how many there are."""
    now = clock[0]
    count = 0
    for j in range(len(candidate)):
        candidate[j] = False
    for j in range(n_jobs):
        target = _movable_alone(j, now, n_ops, machines, next_op, held, busy_until, down_start, down_end, down_count)
        if target < 0:
            continue
        if holder[target] < 0:
            candidate[j] = True
        else:
            length = swap_cycle(j, now, n_ops, machines, next_op, held, busy_until, holder, down_start, down_end, down_count, cycle)
            lowest = True
            for k in range(length):
                lowest = lowest and cycle[k] >= j
            candidate[j] = length > 0 and lowest
        count += candidate[j]
    return count


@njit(cache=True)
def _start(job, now, n_ops, machines, durations, next_op, held, busy_until, holder, down_start, down_end, down_count,
           start_times, end_times, machine_last, machine_pred, machine_work_left, clock):
    """Start the next operation of ``job`` at ``now`` on its machine (which the caller made free)."""
    stride = start_times.shape[1]
    op = next_op[job]
    machine = machines[job, op]
    end = resume_end(now, durations[job, op], down_start[machine], down_end[machine], down_count[machine])
    start_times[job, op] = now
    end_times[job, op] = end
    busy_until[job] = end
    held[job] = machine
    holder[machine] = job
    machine_pred[job * stride + op] = machine_last[machine]
    machine_last[machine] = job * stride + op
    machine_work_left[machine] -= durations[job, op]
    next_op[job] = op + 1
    clock[1] = max(clock[1], end)


@njit(cache=True)
def release_finished(n_jobs, n_ops, held, busy_until, holder, next_op, clock):
    """Release the machines of the jobs whose last operation has completed by now."""
    for j in range(n_jobs):
        if next_op[j] >= n_ops and held[j] >= 0 and busy_until[j] <= clock[0]:
            holder[held[j]] = -1
            held[j] = -1
            clock[2] += 1


@njit(cache=True)
def move(
    job, n_jobs, n_ops, machines, durations, next_op, held, busy_until, holder, down_start, down_end, down_count,
    start_times, end_times, machine_last, machine_pred, machine_work_left, clock, cycle,
):
    """Move ``job`` (a candidate of :func:`find_candidates`) now: start its next operation, with its whole swap
    cycle if its machine is held. Returns how many jobs moved."""
    now = clock[0]
    target = machines[job, next_op[job]]
    if holder[target] < 0:
        cycle[0] = job
        length = 1
    else:
        length = swap_cycle(job, now, n_ops, machines, next_op, held, busy_until, holder, down_start, down_end, down_count, cycle)
    for k in range(length):
        if held[cycle[k]] >= 0:
            holder[held[cycle[k]]] = -1
    for k in range(length):
        _start(cycle[k], now, n_ops, machines, durations, next_op, held, busy_until, holder, down_start, down_end,
               down_count, start_times, end_times, machine_last, machine_pred, machine_work_left, clock)
    release_finished(n_jobs, n_ops, held, busy_until, holder, next_op, clock)
    return length


@njit(cache=True)
def advance(n_jobs, n_ops, n_machines, next_op, held, busy_until, holder, down_start, down_end, down_count, clock):
    """Move the clock to the next event (a completion, or the end of a shutdown in progress) and release the
    machines of the jobs that finished; returns False if there is none (every job finished)."""
    now = clock[0]
    nxt = NEVER
    for j in range(n_jobs):
        if held[j] >= 0 and busy_until[j] > now:
            nxt = min(nxt, busy_until[j])
    for m in range(n_machines):
        until = down_until(m, now, down_start, down_end, down_count)
        if until >= 0:
            nxt = min(nxt, until)
    if nxt == NEVER:
        return False
    clock[0] = nxt
    release_finished(n_jobs, n_ops, held, busy_until, holder, next_op, clock)
    return True


@njit(cache=True)
def settle(
    skip_forced, n_jobs, n_ops, n_machines, machines, durations, next_op, held, busy_until, holder, down_start,
    down_end, down_count, start_times, end_times, machine_last, machine_pred, machine_work_left, clock, candidate,
    cycle,
):
    """Advance time until some job can move (or every job finished) and write the candidates; with
    ``skip_forced``, also move a single candidate by itself, until there is a real choice. Returns the number of
    candidates (0: every job finished), or -1 if the shop is stuck, which the rules of the shop rule out."""
    while True:
        count = find_candidates(n_jobs, n_ops, machines, next_op, held, busy_until, holder, down_start, down_end, down_count, clock, candidate, cycle)
        if count == 0:
            if clock[2] == n_jobs:
                return 0
            if not advance(n_jobs, n_ops, n_machines, next_op, held, busy_until, holder, down_start, down_end, down_count, clock):
                return -1
            continue
        if not skip_forced or count > 1:
            return count
        move(np.argmax(candidate), n_jobs, n_ops, machines, durations, next_op, held, busy_until, holder, down_start,
             down_end, down_count, start_times, end_times, machine_last, machine_pred, machine_work_left, clock, cycle)
