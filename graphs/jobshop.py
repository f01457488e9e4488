"""Job-shop state -> disjunctive-graph tensors (padded, for SB3) and -> PyTorch Geometric graphs (for the GNN).

Nodes are the operations (laid out ``[max_jobs, max_ops]`` and flattened, so node ``j * max_ops + o`` is operation
``o`` of job ``j``) and the machines. Edges, all derivable from the padded tensors:

* job precedence (conjunctive arcs): ``(j, o) -> (j, o + 1)``, fixed by the layout;
* machine sequence (the disjunctive arcs already oriented): each scheduled operation -> the next scheduled
  operation on the same machine, from ``machine_pred``;
* membership: operation <-> its machine, from ``op_machine``.

Times are expressed relative to the current decision time ``t0`` (the earliest start among the unfinished jobs) and
scaled by the instance's mean duration, so the features read the same on a 15x15 and a 100x20 instance.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from schedgym.envs.jobshop.simulator import JobShopSimulator

#: Per-operation features, in column order.
OP_FEATURES = (
    "duration",  # processing time / mean duration
    "scheduled",  # 1 once placed
    "candidate",  # 1 if the next operation of a job the action mask allows
    "start",  # (start if scheduled, else earliest possible start along its job) - t0, / mean duration
    "end",  # same for the completion time
    "job_work_left",  # work of its job from this op on / (n_ops * mean duration)
    "job_ops_left",  # operations of its job from this op on / n_ops
    "machine_work_left",  # unscheduled work on its machine / (n_jobs * mean duration)
)
#: Per-machine features, in column order.
MACHINE_FEATURES = (
    "work_left",  # unscheduled work on the machine / (n_jobs * mean duration)
    "available",  # completion of its last operation - t0, / mean duration
    "waiting_jobs",  # jobs whose next operation is on this machine / n_jobs
    "candidates",  # candidate jobs whose next operation is on this machine / n_jobs
)
_TIME_CLIP = 50.0


class JobShopEncoder:
    """Encodes a :class:`JobShopSimulator` into fixed-size numpy arrays, padded to ``max_jobs x max_ops`` operations
    and ``max_machines`` machines.

    The observation (a ``gymnasium.spaces.Dict``, N = max_jobs * max_ops):

    * ``op_features``: float32 ``[N, len(OP_FEATURES)]``
    * ``op_mask``: int8 ``[N]``, 1 for a real operation, 0 for padding
    * ``op_machine``: int64 ``[N]``, machine of each operation (0 for padding)
    * ``machine_pred``: int64 ``[N]``, node id of the operation scheduled just before on the same machine, -1 if none
    * ``machine_features``: float32 ``[max_machines, len(MACHINE_FEATURES)]``
    * ``machine_mask``: int8 ``[max_machines]``
    * ``job_candidate``: int64 ``[max_jobs]``, node id of each job's next operation, -1 if the job is done or padding
    * ``action_mask``: int8 ``[max_jobs]``, 1 where dispatching the job is allowed
    """

    def __init__(self, max_jobs: int, max_ops: int, max_machines: int) -> None:
        self.max_jobs, self.max_ops, self.max_machines = int(max_jobs), int(max_ops), int(max_machines)
        self.n_nodes = self.max_jobs * self.max_ops

    @property
    def observation_space(self) -> spaces.Dict:
        n, j, m = self.n_nodes, self.max_jobs, self.max_machines
        return spaces.Dict(
            {
                "op_features": spaces.Box(-_TIME_CLIP, _TIME_CLIP, (n, len(OP_FEATURES)), np.float32),
                "op_mask": spaces.Box(0, 1, (n,), np.int8),
                "op_machine": spaces.Box(0, m - 1, (n,), np.int64),
                "machine_pred": spaces.Box(-1, n - 1, (n,), np.int64),
                "machine_features": spaces.Box(-_TIME_CLIP, _TIME_CLIP, (m, len(MACHINE_FEATURES)), np.float32),
                "machine_mask": spaces.Box(0, 1, (m,), np.int8),
                "job_candidate": spaces.Box(-1, n - 1, (j,), np.int64),
                "action_mask": spaces.Box(0, 1, (j,), np.int8),
            }
        )

    def check_fits(self, sim: JobShopSimulator) -> None:
        inst = sim.instance
        if inst.n_jobs > self.max_jobs or inst.n_ops > self.max_ops or inst.n_machines > self.max_machines:
            raise ValueError(
                f"instance {inst.name} ({inst.n_jobs} jobs x {inst.n_ops} ops, {inst.n_machines} machines) does not fit "
                f"the observation padding {self.max_jobs}x{self.max_ops}, {self.max_machines} machines; "
                "raise max_jobs / max_ops / max_machines"
            )

    def encode(self, sim: JobShopSimulator, candidates: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of ``sim``'s current state; ``candidates`` is the bool ``[n_jobs]`` action mask."""
        inst = sim.instance
        n_jobs, n_ops, n_machines = inst.n_jobs, inst.n_ops, inst.n_machines
        mean_duration = float(inst.durations.mean())
        legal = sim.legal_jobs()
        t0 = float(sim.earliest_start[legal].min()) if legal.any() else float(sim.makespan)

        op_index = np.arange(n_ops)
        scheduled = sim.start_times >= 0
        # earliest start along the job chain: the next op at its earliest start, later ops right after it
        cum = np.cumsum(inst.durations, axis=1) - inst.durations  # work before op o within its job
        next_op = np.minimum(sim.next_op, n_ops - 1)
        chain_start = sim.earliest_start[:, None].astype(float) + (cum - cum[np.arange(n_jobs), next_op][:, None])
        start = np.where(scheduled, sim.start_times, chain_start)
        end = start + inst.durations

        suffix = np.cumsum(inst.durations[:, ::-1], axis=1)[:, ::-1]
        unscheduled_work = np.bincount(inst.machines[~scheduled], inst.durations[~scheduled], minlength=n_machines)
        machine_scale = n_jobs * mean_duration

        features = np.zeros((self.max_jobs, self.max_ops, len(OP_FEATURES)), dtype=np.float32)
        f = features[:n_jobs, :n_ops]
        f[..., 0] = inst.durations / mean_duration
        f[..., 1] = scheduled
        f[..., 2] = (op_index[None, :] == sim.next_op[:, None]) & candidates[:, None]
        f[..., 3] = np.clip((start - t0) / mean_duration, -_TIME_CLIP, _TIME_CLIP)
        f[..., 4] = np.clip((end - t0) / mean_duration, -_TIME_CLIP, _TIME_CLIP)
        f[..., 5] = suffix / (n_ops * mean_duration)
        f[..., 6] = (n_ops - op_index[None, :]) / n_ops
        f[..., 7] = unscheduled_work[inst.machines] / machine_scale

        op_mask = np.zeros((self.max_jobs, self.max_ops), dtype=np.int8)
        op_mask[:n_jobs, :n_ops] = 1
        op_machine = np.zeros((self.max_jobs, self.max_ops), dtype=np.int64)
        op_machine[:n_jobs, :n_ops] = inst.machines

        machine_pred = np.full((self.max_jobs, self.max_ops), -1, dtype=np.int64)
        pred = sim.machine_pred.reshape(n_jobs, n_ops)
        machine_pred[:n_jobs, :n_ops] = np.where(pred >= 0, (pred // n_ops) * self.max_ops + pred % n_ops, -1)

        machine_features = np.zeros((self.max_machines, len(MACHINE_FEATURES)), dtype=np.float32)
        count = sim.machine_count
        last_end = np.where(count > 0, sim.machine_ends[np.arange(n_machines), np.maximum(count - 1, 0)], 0)
        waiting = np.bincount(sim.next_machine[legal], minlength=n_machines)
        competing = np.bincount(sim.next_machine[candidates], minlength=n_machines)
        machine_features[:n_machines, 0] = unscheduled_work / machine_scale
        machine_features[:n_machines, 1] = np.clip((last_end - t0) / mean_duration, -_TIME_CLIP, _TIME_CLIP)
        machine_features[:n_machines, 2] = waiting / n_jobs
        machine_features[:n_machines, 3] = competing / n_jobs
        machine_mask = np.zeros(self.max_machines, dtype=np.int8)
        machine_mask[:n_machines] = 1

        job_candidate = np.full(self.max_jobs, -1, dtype=np.int64)
        job_candidate[:n_jobs] = np.where(legal, np.arange(n_jobs) * self.max_ops + next_op, -1)
        action_mask = np.zeros(self.max_jobs, dtype=np.int8)
        action_mask[:n_jobs] = candidates
        return {
            "op_features": features.reshape(self.n_nodes, -1),
            "op_mask": op_mask.ravel(),
            "op_machine": op_machine.ravel(),
            "machine_pred": machine_pred.ravel(),
            "machine_features": machine_features,
            "machine_mask": machine_mask,
            "job_candidate": job_candidate,
            "action_mask": action_mask,
        }
