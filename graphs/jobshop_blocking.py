"""Blocking job-shop state -> the dispatching graph's tensors, so that the job-shop GNN reads it unchanged.

Same fields, layout and feature columns as :class:`schedgym.graphs.jobshop.JobShopEncoder` (the machine-sequence
edges are the order in which operations entered each machine), with the blocking shop's meaning of time: ``t0`` is
now, an operation that has not started is estimated to start once its job's current operation completes and the
work before it is done, and a machine's ``available`` column is how long until it stops processing or is repaired
(0 when it is free or its job is blocked on it). Only what has happened is encoded: a running operation's
completion counts the shutdowns it has met so far, not those still to come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from schedgym.envs.jobshop.blocking_kernels import down_until
from schedgym.graphs.jobshop import JobShopEncoder, _clip_time

if TYPE_CHECKING:
    from schedgym.envs.jobshop.blocking import BlockingJobShopSimulator


@njit(cache=True)
def known_completion(job, now, machines, durations, next_op, held, start_times, down_start, down_end, down_count):
    """When the running operation of ``job`` completes as far as is known at ``now``: its work left after the
    shutdowns met so far, from the end of the shutdown in progress (if any) or from now."""
    op = next_op[job] - 1
    machine = held[job]
    start = start_times[job, op]
    paused = 0
    for k in range(down_count[machine]):
        if down_start[machine, k] >= now:
            break
        if down_end[machine, k] > start:
            paused += min(down_end[machine, k], now) - max(down_start[machine, k], start)
    left = durations[job, op] - (now - start - paused)
    until = down_until(machine, now, down_start, down_end, down_count)
    return (until if until >= 0 else now) + max(left, 0)


@njit(cache=True)
def write_blocking_features(
    n_jobs, n_ops, n_machines, machines, durations, duration_scaled, work_before, mean_duration, machine_scale,
    next_op, held, busy_until, holder, down_start, down_end, down_count, start_times, end_times, machine_pred,
    machine_work_left, clock, candidate, op_features, node_pred, machine_features, job_candidate, action_mask,
):
    """Write the columns of one blocking state's observation that change during an episode (op_features 1-4 and 7,
    node_pred, machine_features, job_candidate, action_mask; the fields of
    :func:`schedgym.graphs.jobshop.write_state_features`) from the simulator's arrays."""
    stride = start_times.shape[1]
    max_ops = op_features.shape[0] // len(job_candidate)
    now = clock[0]
    for j in range(n_jobs):
        running = held[j] >= 0 and next_op[j] > 0 and busy_until[j] > now
        ready = known_completion(j, now, machines, durations, next_op, held, start_times, down_start, down_end, down_count) if running else now
        nxt = min(next_op[j], n_ops - 1)
        offset = ready - work_before[j, nxt]
        for o in range(n_ops):
            node = j * max_ops + o
            if start_times[j, o] >= 0:
                op_features[node, 1] = 1.0
                start = float(start_times[j, o])
                if o == next_op[j] - 1 and running:
                    end = float(ready)
                else:
                    end = float(end_times[j, o])
            else:
                op_features[node, 1] = 0.0
                start = float(work_before[j, o] + offset)
                end = start + durations[j, o]
            op_features[node, 2] = 0.0
            op_features[node, 3] = _clip_time((start - now) / mean_duration)
            op_features[node, 4] = _clip_time((end - now) / mean_duration)
            op_features[node, 7] = machine_work_left[machines[j, o]] / machine_scale
            pred = machine_pred[j * stride + o]
            node_pred[node] = -1 if pred < 0 else (pred // stride) * max_ops + pred % stride
    machine_features[:] = 0.0
    for m in range(n_machines):
        machine_features[m, 0] = machine_work_left[m] / machine_scale
        busy = 0
        until = down_until(m, now, down_start, down_end, down_count)
        if until >= 0:
            busy = until - now
        job = holder[m]
        if job >= 0 and busy_until[job] > now:
            busy = max(busy, known_completion(job, now, machines, durations, next_op, held, start_times, down_start, down_end, down_count) - now)
        machine_features[m, 1] = _clip_time(busy / mean_duration)
    job_candidate[:] = -1
    action_mask[:] = 0
    for j in range(n_jobs):
        if next_op[j] < n_ops:
            job_candidate[j] = j * max_ops + next_op[j]
            machine_features[machines[j, next_op[j]], 2] += 1.0
            if candidate[j]:
                op_features[j * max_ops + next_op[j], 2] = 1.0
                machine_features[machines[j, next_op[j]], 3] += 1.0
                action_mask[j] = 1
    for m in range(n_machines):
        machine_features[m, 2] /= n_jobs
        machine_features[m, 3] /= n_jobs


class BlockingEncoder(JobShopEncoder):
    """Encodes a :class:`~schedgym.envs.jobshop.blocking.BlockingJobShopSimulator` into the observation of
    :class:`~schedgym.graphs.jobshop.JobShopEncoder` (same space, same fields; see the module docstring)."""

    def _job_shop(self, sim: BlockingJobShopSimulator):
        return sim.jobshop

    def _write_state(self, sim: BlockingJobShopSimulator, candidates: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        shop, c = sim.jobshop, self._constants
        write_blocking_features(
            shop.n_jobs, shop.n_ops, shop.n_machines, shop.machines, shop.durations, c.duration_scaled, c.work_before,
            c.mean_duration, c.machine_scale, sim.next_op, sim.held, sim.busy_until, sim.holder, sim.down_start,
            sim.down_end, sim.down_count, sim.start_times, sim.end_times, sim.machine_pred, sim.machine_work_left,
            sim.clock, candidates, self._op_features, obs["machine_pred"], obs["machine_features"],
            obs["job_candidate"], obs["action_mask"],
        )
