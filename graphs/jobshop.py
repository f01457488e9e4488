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
from numba import njit, prange

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


class EpisodeConstants(NamedTuple):
    """What the encoding of an instance keeps fixed during an episode (padded to ``max_jobs x max_ops`` nodes).

    Attributes:
        op_features: float32 ``[N, len(OP_FEATURES)]`` with the constant columns (duration, job work and
            operations left) filled, the others 0.
        op_mask, op_machine: the observation fields of the same names.
        machine_mask: int8 ``[max_machines]``.
        duration_scaled: float64 ``[max_jobs, max_ops]``, duration / mean duration (the float32 feature, widened).
        work_before: float64 ``[max_jobs, max_ops]``, work of the job before each operation.
        mean_duration: the instance's mean duration; machine_scale: ``n_jobs * mean_duration``.
    """

    op_features: np.ndarray
    op_mask: np.ndarray
    op_machine: np.ndarray
    machine_mask: np.ndarray
    duration_scaled: np.ndarray
    work_before: np.ndarray
    mean_duration: float
    machine_scale: float


def episode_constants(instance, max_jobs: int, max_ops: int, max_machines: int) -> EpisodeConstants:
    """The fixed part of the encoding of ``instance`` (a :class:`~schedgym.envs.jobshop.JobShopInstance`)."""
    n_jobs, n_ops, n_machines = instance.n_jobs, instance.n_ops, instance.n_machines
    mean_duration = float(instance.durations.mean())
    features = np.zeros((max_jobs, max_ops, len(OP_FEATURES)), dtype=np.float32)
    suffix = np.cumsum(instance.durations[:, ::-1], axis=1)[:, ::-1]
    features[:n_jobs, :n_ops, 0] = instance.durations / mean_duration
    features[:n_jobs, :n_ops, 5] = suffix / (n_ops * mean_duration)
    features[:n_jobs, :n_ops, 6] = (n_ops - np.arange(n_ops)[None, :]) / n_ops
    duration_scaled = np.zeros((max_jobs, max_ops))
    duration_scaled[:n_jobs, :n_ops] = features[:n_jobs, :n_ops, 0]
    work_before = np.zeros((max_jobs, max_ops))
    work_before[:n_jobs, :n_ops] = np.cumsum(instance.durations, axis=1) - instance.durations
    op_mask = np.zeros((max_jobs, max_ops), dtype=np.int8)
    op_mask[:n_jobs, :n_ops] = 1
    op_machine = np.zeros((max_jobs, max_ops), dtype=np.int64)
    op_machine[:n_jobs, :n_ops] = instance.machines
    machine_mask = np.zeros(max_machines, dtype=np.int8)
    machine_mask[:n_machines] = 1
    return EpisodeConstants(
        features.reshape(max_jobs * max_ops, -1), op_mask.ravel(), op_machine.ravel(), machine_mask,
        duration_scaled, work_before, mean_duration, n_jobs * mean_duration,
    )


@njit(cache=True)
def _clip_time(value):
    return min(max(value, -_TIME_CLIP), _TIME_CLIP)


@njit(cache=True)
def write_state_features(
    n_jobs, n_ops, n_machines, machines, duration_scaled, work_before, mean_duration, machine_scale,
    next_op, next_machine, earliest_start, start_times, machine_ends, machine_count, machine_pred, machine_work_left,
    makespan, candidate, op_features, node_pred, machine_features, job_candidate, action_mask,
):
    """Write the columns of one state's observation that change during an episode (op_features 1-4 and 7,
    node_pred = the observation's ``machine_pred``, machine_features, job_candidate, action_mask) from the
    simulator arrays (see :mod:`schedgym.envs.jobshop.kernels`; their operation ids use ``start_times.shape[1]``
    columns per job, node ids use ``op_features.shape[0] // len(job_candidate)``). Times are relative to
    t0 = the earliest start among the unfinished jobs (the makespan once all are done)."""
    stride = start_times.shape[1]
    max_ops = op_features.shape[0] // len(job_candidate)
    t0 = np.inf
    n_legal = 0
    for j in range(n_jobs):
        if next_op[j] < n_ops:
            t0 = min(t0, float(earliest_start[j]))
            n_legal += 1
    if n_legal == 0:
        t0 = float(makespan)
    for j in range(n_jobs):
        nxt = min(next_op[j], n_ops - 1)
        offset = earliest_start[j] - work_before[j, nxt]
        for o in range(n_ops):
            node = j * max_ops + o
            if start_times[j, o] >= 0:
                op_features[node, 1] = 1.0
                start = float(start_times[j, o])
            else:
                op_features[node, 1] = 0.0
                start = work_before[j, o] + offset
            start_scaled = (start - t0) / mean_duration
            op_features[node, 2] = 0.0
            op_features[node, 3] = _clip_time(start_scaled)
            op_features[node, 4] = _clip_time(start_scaled + duration_scaled[j, o])
            op_features[node, 7] = machine_work_left[machines[j, o]] / machine_scale
            pred = machine_pred[j * stride + o]
            node_pred[node] = -1 if pred < 0 else (pred // stride) * max_ops + pred % stride
    machine_features[:] = 0.0
    for m in range(n_machines):
        machine_features[m, 0] = machine_work_left[m] / machine_scale
        last_end = machine_ends[m, machine_count[m] - 1] if machine_count[m] > 0 else 0
        machine_features[m, 1] = _clip_time((last_end - t0) / mean_duration)
    job_candidate[:] = -1
    action_mask[:] = 0
    for j in range(n_jobs):
        if next_op[j] < n_ops:
            job_candidate[j] = j * max_ops + next_op[j]
            machine_features[next_machine[j], 2] += 1.0
            if candidate[j]:
                op_features[j * max_ops + next_op[j], 2] = 1.0
                machine_features[next_machine[j], 3] += 1.0
                action_mask[j] = 1
    for m in range(n_machines):
        machine_features[m, 2] /= n_jobs
        machine_features[m, 3] /= n_jobs


@njit(cache=True, parallel=True)
def write_batch_features(
    slots, n_jobs, n_ops, n_machines, machines, duration_scaled, work_before, mean_duration, machine_scale,
    next_op, next_machine, earliest_start, start_times, machine_ends, machine_count, machine_pred, machine_work_left,
    progress, candidate, op_features, node_pred, machine_features, job_candidate, action_mask,
):
    """:func:`write_state_features` for the slots ``slots`` of a batch (every array with a leading ``[B]`` axis;
    ``progress[b, 0]`` is slot b's makespan), in parallel over numba's threads."""
    for i in prange(len(slots)):
        b = slots[i]
        write_state_features(
            n_jobs[b], n_ops[b], n_machines[b], machines[b], duration_scaled[b], work_before[b], mean_duration[b],
            machine_scale[b], next_op[b], next_machine[b], earliest_start[b], start_times[b], machine_ends[b],
            machine_count[b], machine_pred[b], machine_work_left[b], progress[b, 0], candidate[b], op_features[b],
            node_pred[b], machine_features[b], job_candidate[b], action_mask[b],
        )


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

    The batched engine (:class:`schedgym.envs.jobshop.batched.JobShopBatch`) writes the same fields for B states
    with the same compiled kernel, :func:`write_state_features`.
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

    def check_fits(self, instance) -> None:
        """Raise ``ValueError`` if ``instance`` is larger than the padding."""
        if instance.n_jobs > self.max_jobs or instance.n_ops > self.max_ops or instance.n_machines > self.max_machines:
            raise ValueError(
                f"instance {instance.name} ({instance.n_jobs} jobs x {instance.n_ops} ops, {instance.n_machines} machines) "
                f"does not fit the observation padding {self.max_jobs}x{self.max_ops}, {self.max_machines} machines; "
                "raise max_jobs / max_ops / max_machines"
            )

    def reset(self, sim: JobShopSimulator) -> None:
        """Prepare the arrays that stay fixed during an episode on ``sim``'s instance; call before :meth:`encode`."""
        instance = self._job_shop(sim)
        self.check_fits(instance)
        self._constants = episode_constants(instance, self.max_jobs, self.max_ops, self.max_machines)
        self._op_features = self._constants.op_features.copy()

    def encode(self, sim: JobShopSimulator, candidates: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of ``sim``'s current state; ``candidates`` is the bool ``[n_jobs]`` action mask.

        Only the columns that change during an episode are rewritten; the rest was prepared by :meth:`reset`.
        """
        c = self._constants
        obs = {
            "machine_pred": np.full(self.n_nodes, -1, dtype=np.int64),
            "machine_features": np.zeros((self.max_machines, len(MACHINE_FEATURES)), dtype=np.float32),
            "job_candidate": np.zeros(self.max_jobs, dtype=np.int64),
            "action_mask": np.zeros(self.max_jobs, dtype=np.int8),
        }
        self._write_state(sim, np.asarray(candidates, dtype=bool), obs)
        return {
            "op_features": self._op_features.copy(),
            "op_mask": c.op_mask.copy(),
            "op_machine": c.op_machine.copy(),
            "machine_mask": c.machine_mask.copy(),
            **obs,
        }

    def _job_shop(self, sim: JobShopSimulator):
        """The job-shop instance (machines, durations) ``sim`` runs."""
        return sim.instance

    def _write_state(self, sim: JobShopSimulator, candidates: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        """Write the changing columns of ``self._op_features`` and the per-state fields of ``obs`` (see
        :func:`write_state_features`)."""
        inst, c = sim.instance, self._constants
        write_state_features(
            inst.n_jobs, inst.n_ops, inst.n_machines, c.op_machine.reshape(self.max_jobs, self.max_ops), c.duration_scaled, c.work_before, c.mean_duration,
            c.machine_scale, sim.next_op, sim.next_machine, sim.earliest_start, sim.start_times, sim.machine_ends,
            sim.machine_count, sim.machine_pred, sim.machine_work_left, sim.makespan, candidates,
            self._op_features, obs["machine_pred"], obs["machine_features"], obs["job_candidate"], obs["action_mask"],
        )


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
