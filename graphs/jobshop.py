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

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from gymnasium import spaces

if TYPE_CHECKING:
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

    def reset(self, sim: JobShopSimulator) -> None:
        """Prepare the arrays that stay fixed during an episode on ``sim.instance``; call before :meth:`encode`."""
        self.check_fits(sim)
        inst = sim.instance
        n_jobs, n_ops, n_machines = inst.n_jobs, inst.n_ops, inst.n_machines
        self._instance = inst
        self._mean_duration = float(inst.durations.mean())
        self._machine_scale = n_jobs * self._mean_duration
        self._work_before = (np.cumsum(inst.durations, axis=1) - inst.durations).astype(np.float64)
        self._node = (np.arange(n_jobs)[:, None] * self.max_ops + np.arange(n_ops)[None, :]).ravel()
        self._job_node0 = np.arange(n_jobs) * self.max_ops
        self._job_rows = np.arange(n_jobs)
        self._unpadded = (n_jobs, n_ops) == (self.max_jobs, self.max_ops)
        self._op_index = np.arange(n_ops)

        # feature-major layout [F, max_jobs, max_ops]: every column is written contiguously, transposed on output
        features = np.zeros((len(OP_FEATURES), self.max_jobs, self.max_ops), dtype=np.float32)
        suffix = np.cumsum(inst.durations[:, ::-1], axis=1)[:, ::-1]
        features[0, :n_jobs, :n_ops] = inst.durations / self._mean_duration
        features[5, :n_jobs, :n_ops] = suffix / (n_ops * self._mean_duration)
        features[6, :n_jobs, :n_ops] = (n_ops - self._op_index[None, :]) / n_ops
        self._features = features
        self._duration_scaled = features[0, :n_jobs, :n_ops].astype(np.float64)
        self._machine_rows = np.arange(n_machines)
        op_mask = np.zeros((self.max_jobs, self.max_ops), dtype=np.int8)
        op_mask[:n_jobs, :n_ops] = 1
        self._op_mask = op_mask.ravel()
        op_machine = np.zeros((self.max_jobs, self.max_ops), dtype=np.int64)
        op_machine[:n_jobs, :n_ops] = inst.machines
        self._op_machine = op_machine.ravel()
        self._machine_mask = np.zeros(self.max_machines, dtype=np.int8)
        self._machine_mask[:n_machines] = 1

    def encode(self, sim: JobShopSimulator, candidates: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of ``sim``'s current state; ``candidates`` is the bool ``[n_jobs]`` action mask.

        Only the columns that change during an episode are recomputed; the rest was prepared by :meth:`reset`.
        """
        inst = self._instance
        n_jobs, n_ops, n_machines = inst.n_jobs, inst.n_ops, inst.n_machines
        mean_duration = self._mean_duration
        legal = sim.legal_jobs()
        t0 = float(sim.earliest_start[legal].min()) if legal.any() else float(sim.makespan)

        scheduled = sim.start_times >= 0
        # unscheduled operations: earliest start along the job chain (next op at its earliest start, later ops after)
        next_op = np.minimum(sim.next_op, n_ops - 1)
        offset = sim.earliest_start - self._work_before[self._job_rows, next_op]
        start = np.where(scheduled, sim.start_times, self._work_before + offset[:, None])
        start_scaled = (start - t0) / mean_duration

        f = self._features
        f[1, :n_jobs, :n_ops] = scheduled
        f[2] = 0.0
        f[3, :n_jobs, :n_ops] = np.minimum(np.maximum(start_scaled, -_TIME_CLIP), _TIME_CLIP)
        f[4, :n_jobs, :n_ops] = np.minimum(np.maximum(start_scaled + self._duration_scaled, -_TIME_CLIP), _TIME_CLIP)
        f[7, :n_jobs, :n_ops] = sim.machine_work_left[inst.machines] / self._machine_scale
        candidate_jobs = np.flatnonzero(candidates)
        f[2, candidate_jobs, sim.next_op[candidate_jobs]] = 1.0

        pred = sim.machine_pred
        if self._unpadded:  # node ids are the simulator's flat operation ids
            machine_pred = pred.copy()
        else:
            machine_pred = np.full(self.n_nodes, -1, dtype=np.int64)
            has_pred = pred >= 0
            machine_pred[self._node[has_pred]] = self._node[pred[has_pred]]

        machine_features = np.zeros((self.max_machines, len(MACHINE_FEATURES)), dtype=np.float32)
        count = sim.machine_count
        last_end = np.where(count > 0, sim.machine_ends[self._machine_rows, np.maximum(count - 1, 0)], 0)
        machine_features[:n_machines, 0] = sim.machine_work_left / self._machine_scale
        machine_features[:n_machines, 1] = np.minimum(np.maximum((last_end - t0) / mean_duration, -_TIME_CLIP), _TIME_CLIP)
        machine_features[:n_machines, 2] = np.bincount(sim.next_machine[legal], minlength=n_machines) / n_jobs
        machine_features[:n_machines, 3] = np.bincount(sim.next_machine[candidates], minlength=n_machines) / n_jobs

        job_candidate = np.full(self.max_jobs, -1, dtype=np.int64)
        job_candidate[:n_jobs] = np.where(legal, self._job_node0 + next_op, -1)
        action_mask = np.zeros(self.max_jobs, dtype=np.int8)
        action_mask[:n_jobs] = candidates
        return {
            "op_features": self._features.reshape(len(OP_FEATURES), self.n_nodes).T.copy(),
            "op_mask": self._op_mask.copy(),
            "op_machine": self._op_machine.copy(),
            "machine_pred": machine_pred,
            "machine_features": machine_features,
            "machine_mask": self._machine_mask.copy(),
            "job_candidate": job_candidate,
            "action_mask": action_mask,
        }


# ---------------------------------------------------------------------------------------------------- PyG graphs
#: Relation ids of the edges built by :func:`to_graph_batch`.
RELATIONS = ("job_next", "job_prev", "machine_next", "machine_prev", "op_to_machine", "machine_to_op")


class JobShopGraphBatch(NamedTuple):
    """A batch of B job-shop states as one PyTorch Geometric graph with two node types and six relations.

    Node ids: the real operations of every state first (``n_op`` of them), then the real machines. Attributes:
        x_op: float ``[n_op, len(OP_FEATURES)]``.
        x_machine: float ``[n_machine, len(MACHINE_FEATURES)]``.
        edge_index: int64 ``[2, E]`` over the combined node ids; ``edge_type``: int64 ``[E]``, index into RELATIONS.
        op_batch: int64 ``[n_op]``, state of each operation node; ``machine_batch``: likewise ``[n_machine]``.
        candidate_op: int64 ``[B, J]``, combined node id of each job's next operation (0 where there is none).
        candidate_machine: int64 ``[B, J]``, combined node id of that operation's machine.
        batch_size: B.
    """

    x_op: torch.Tensor
    x_machine: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    op_batch: torch.Tensor
    machine_batch: torch.Tensor
    candidate_op: torch.Tensor
    candidate_machine: torch.Tensor
    batch_size: int


def to_graph_batch(obs: dict[str, torch.Tensor]) -> JobShopGraphBatch:
    """Turn a batch of padded observations (tensors with a leading batch dimension, as SB3 hands them over; integer
    fields may arrive as floats) into one graph holding only the real nodes."""
    op_mask = obs["op_mask"] != 0
    machine_mask = obs["machine_mask"] != 0
    batch_size, n_nodes = op_mask.shape
    n_machines = machine_mask.shape[1]
    device = op_mask.device
    flat_op_mask = op_mask.reshape(-1)
    flat_machine_mask = machine_mask.reshape(-1)
    # padded flat index -> compact node id (-1 for padding)
    op_id = torch.cumsum(flat_op_mask.long(), 0) - 1
    n_op = int(flat_op_mask.sum())
    machine_id = torch.cumsum(flat_machine_mask.long(), 0) - 1 + n_op
    op_base = (torch.arange(batch_size, device=device) * n_nodes)[:, None]
    machine_base = (torch.arange(batch_size, device=device) * n_machines)[:, None]

    # job precedence: padded node n -> n + 1 when both are real operations of the same job
    max_ops = n_nodes // obs["action_mask"].shape[1]
    same_job = (torch.arange(n_nodes - 1, device=device) + 1) % max_ops != 0
    nxt = op_mask[:, :-1] & op_mask[:, 1:] & same_job[None, :]
    src = (op_base + torch.arange(n_nodes - 1, device=device)[None, :])[nxt]
    job_src, job_dst = op_id[src], op_id[src + 1]
    # machine sequence: pred -> node
    pred = obs["machine_pred"].long()
    has_pred = (pred >= 0) & op_mask
    seq_src = op_id[(op_base + pred)[has_pred]]
    seq_dst = op_id[(op_base + torch.arange(n_nodes, device=device)[None, :]).expand_as(pred)[has_pred]]
    # membership
    op_machine = obs["op_machine"].long()
    mem_op = op_id[(op_base + torch.arange(n_nodes, device=device)[None, :]).expand_as(op_machine)[op_mask]]
    mem_machine = machine_id[(machine_base + op_machine)[op_mask]]

    sources = [job_src, job_dst, seq_src, seq_dst, mem_op, mem_machine]
    targets = [job_dst, job_src, seq_dst, seq_src, mem_machine, mem_op]
    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    edge_type = torch.cat([torch.full_like(s, r) for r, s in enumerate(sources)])

    candidate = obs["job_candidate"].long()
    has_candidate = candidate >= 0
    safe = candidate.clamp(min=0)
    candidate_op = torch.where(has_candidate, op_id[op_base + safe], 0)
    candidate_machine = torch.where(has_candidate, machine_id[machine_base + op_machine.gather(1, safe)], n_op)

    return JobShopGraphBatch(
        x_op=obs["op_features"].reshape(-1, obs["op_features"].shape[-1])[flat_op_mask].float(),
        x_machine=obs["machine_features"].reshape(-1, obs["machine_features"].shape[-1])[flat_machine_mask].float(),
        edge_index=edge_index,
        edge_type=edge_type,
        op_batch=torch.arange(batch_size, device=device).repeat_interleave(op_mask.sum(1)),
        machine_batch=torch.arange(batch_size, device=device).repeat_interleave(machine_mask.sum(1)),
        candidate_op=candidate_op,
        candidate_machine=candidate_machine,
        batch_size=batch_size,
    )
