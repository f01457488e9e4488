"""A complete job-shop schedule -> padded disjunctive-graph tensors, for the improvement policy.

Nodes are the operations, laid out ``[max_jobs, max_ops]`` and flattened (node ``j * max_ops + o`` is operation
``o`` of job ``j``, as in :mod:`schedgym.graphs.jobshop`), and the machines. Edges, in both directions (the
forward view follows time, the backward view runs against it):

* job precedence ``(j, o) -> (j, o + 1)`` (``op_job_next``: node n + 1 is node n's job successor);
* machine sequence: each operation -> the next one on its machine (``machine_pred`` inverted);
* membership: operation <-> its machine (``op_machine``).

Times are divided by the current makespan, so every start, end and tail lies in [0, 1] whatever the instance size.
The action is a node: swap that operation with its machine successor (``action_mask`` marks the N5 moves).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces
from numba import njit

if TYPE_CHECKING:
    from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule

#: Per-operation features, in column order.
IMPROVE_OP_FEATURES = (
    "duration",  # processing time / mean duration
    "start",  # head / makespan
    "end",  # (head + duration) / makespan
    "tail",  # longest path after the operation / makespan
    "critical",  # 1 on a longest path
    "slack",  # (makespan - head - duration - tail) / makespan
    "movable",  # 1 if swapping it with its machine successor is an N5 move
    "machine_position",  # position in its machine's sequence / n_jobs
    "above_best",  # makespan / best makespan of the episode - 1 (the same on every node)
    "moves_left",  # moves left in the episode / horizon (the same on every node)
)
#: Per-machine features, in column order.
IMPROVE_MACHINE_FEATURES = (
    "load",  # work on the machine / makespan
    "critical_ops",  # its critical operations / n_jobs
    "end",  # end of its last operation / makespan
)
_FEATURE_MAX = 1e6  # every feature is >= 0; durations over the mean are the only ones that can exceed a few units


@njit(cache=True)
def write_improve_features(
    n_jobs, n_ops, n_machines, max_ops, machines, duration, mean_duration, machine_pred, machine_succ, head, tail, makespan,
    best_makespan, moves_left_fraction, moves, op_features, node_pred, machine_features, action_mask,
):
    """Write one schedule's observation fields that change with a move (every op feature column, ``machine_pred``
    as node ids, ``machine_features``, ``action_mask``) from the :class:`DisjunctiveSchedule` arrays (flat operation
    ids ``job * n_ops + op``; node ids ``job * max_ops + op``). ``moves``: int8 ``[n_jobs * n_ops]``, the N5 mask."""
    scale = 1.0 / max(makespan, 1)
    above_best = makespan / max(best_makespan, 1) - 1.0
    machine_features[:] = 0.0
    action_mask[:] = 0
    for j in range(n_jobs):
        for o in range(n_ops):
            v = j * n_ops + o
            node = j * max_ops + o
            critical = head[v] + duration[v] + tail[v] == makespan
            op_features[node, 0] = duration[v] / mean_duration
            op_features[node, 1] = head[v] * scale
            op_features[node, 2] = (head[v] + duration[v]) * scale
            op_features[node, 3] = tail[v] * scale
            op_features[node, 4] = 1.0 if critical else 0.0
            op_features[node, 5] = (makespan - head[v] - duration[v] - tail[v]) * scale
            op_features[node, 6] = moves[v]
            op_features[node, 8] = above_best
            op_features[node, 9] = moves_left_fraction
            pred = machine_pred[v]
            node_pred[node] = -1 if pred < 0 else (pred // n_ops) * max_ops + pred % n_ops
            action_mask[node] = moves[v]
            m = machines[v]
            machine_features[m, 0] += duration[v] * scale
            if critical:
                machine_features[m, 1] += 1.0 / n_jobs
            machine_features[m, 2] = max(machine_features[m, 2], (head[v] + duration[v]) * scale)
    # machine positions: walk each machine's chain from its first operation
    for first in range(n_jobs * n_ops):
        if machine_pred[first] >= 0:
            continue
        position = 0
        v = first
        while v >= 0:
            op_features[(v // n_ops) * max_ops + v % n_ops, 7] = position / n_jobs
            position += 1
            v = machine_succ[v]
    return 0



class ImproveEncoder:
    """Encodes a :class:`~schedgym.envs.jobshop.disjunctive.DisjunctiveSchedule` into fixed-size arrays, padded to
    ``max_jobs x max_ops`` operations and ``max_machines`` machines.

    The observation (a ``gymnasium.spaces.Dict``, N = max_jobs * max_ops):

    * ``op_features``: float32 ``[N, len(IMPROVE_OP_FEATURES)]``
    * ``op_mask``: int8 ``[N]``, 1 for a real operation, 0 for padding
    * ``op_machine``: int64 ``[N]``, machine of each operation (0 for padding)
    * ``op_job_next``: int8 ``[N]``, 1 where node n + 1 is the next operation of node n's job
    * ``machine_pred``: int64 ``[N]``, node id of the operation just before on the same machine, -1 if none
    * ``machine_features``: float32 ``[max_machines, len(IMPROVE_MACHINE_FEATURES)]``
    * ``machine_mask``: int8 ``[max_machines]``
    * ``action_mask``: int8 ``[N]``, 1 where swapping the operation with its machine successor is an N5 move
    """

    def __init__(self, max_jobs: int, max_ops: int, max_machines: int) -> None:
        self.max_jobs, self.max_ops, self.max_machines = int(max_jobs), int(max_ops), int(max_machines)
        self.n_nodes = self.max_jobs * self.max_ops

    @property
    def observation_space(self) -> spaces.Dict:
        n, m = self.n_nodes, self.max_machines
        return spaces.Dict(
            {
                "op_features": spaces.Box(0.0, _FEATURE_MAX, (n, len(IMPROVE_OP_FEATURES)), np.float32),
                "op_mask": spaces.Box(0, 1, (n,), np.int8),
                "op_machine": spaces.Box(0, m - 1, (n,), np.int64),
                "op_job_next": spaces.Box(0, 1, (n,), np.int8),
                "machine_pred": spaces.Box(-1, n - 1, (n,), np.int64),
                "machine_features": spaces.Box(0.0, _FEATURE_MAX, (m, len(IMPROVE_MACHINE_FEATURES)), np.float32),
                "machine_mask": spaces.Box(0, 1, (m,), np.int8),
                "action_mask": spaces.Box(0, 1, (n,), np.int8),
            }
        )

    def node(self, operation: int, n_ops: int) -> int:
        """Node id of flat operation id ``job * n_ops + op``."""
        return (operation // n_ops) * self.max_ops + operation % n_ops

    def operation(self, node: int, n_ops: int) -> int:
        """Flat operation id of node id ``job * max_ops + op``."""
        return (node // self.max_ops) * n_ops + node % self.max_ops

    def fixed_fields(self, instance) -> dict[str, np.ndarray]:
        """The fields that stay the same for every schedule of ``instance``.

        Raises:
            ValueError: if ``instance`` is larger than the padding.
        """
        n_jobs, n_ops = instance.n_jobs, instance.n_ops
        if n_jobs > self.max_jobs or n_ops > self.max_ops or instance.n_machines > self.max_machines:
            raise ValueError(
                f"instance {instance.name} ({n_jobs} jobs x {n_ops} ops, {instance.n_machines} machines) does not fit "
                f"the observation padding {self.max_jobs}x{self.max_ops}, {self.max_machines} machines; raise max_jobs / max_ops / max_machines"
            )
        op_mask = np.zeros((self.max_jobs, self.max_ops), dtype=np.int8)
        op_mask[:n_jobs, :n_ops] = 1
        op_machine = np.zeros((self.max_jobs, self.max_ops), dtype=np.int64)
        op_machine[:n_jobs, :n_ops] = instance.machines
        op_job_next = np.zeros((self.max_jobs, self.max_ops), dtype=np.int8)
        op_job_next[:n_jobs, : n_ops - 1] = 1
        machine_mask = np.zeros(self.max_machines, dtype=np.int8)
        machine_mask[: instance.n_machines] = 1
        return {"op_mask": op_mask.ravel(), "op_machine": op_machine.ravel(), "op_job_next": op_job_next.ravel(), "machine_mask": machine_mask}

    def encode(self, schedule: DisjunctiveSchedule, moves: np.ndarray, best_makespan: int, moves_left_fraction: float, fixed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The observation of ``schedule`` (``moves``: its N5 mask, ``fixed``: :meth:`fixed_fields` of its instance)."""
        obs = {
            "op_features": np.zeros((self.n_nodes, len(IMPROVE_OP_FEATURES)), dtype=np.float32),
            "machine_pred": np.full(self.n_nodes, -1, dtype=np.int64),
            "machine_features": np.zeros((self.max_machines, len(IMPROVE_MACHINE_FEATURES)), dtype=np.float32),
            "action_mask": np.zeros(self.n_nodes, dtype=np.int8),
        }
        inst = schedule.instance
        write_improve_features(
            inst.n_jobs, inst.n_ops, inst.n_machines, self.max_ops, inst.machines.ravel(), schedule.duration,
            max(float(schedule.duration.mean()), 1e-9), schedule.machine_pred, schedule.machine_succ, schedule.head, schedule.tail,
            schedule.makespan, best_makespan, moves_left_fraction, moves, obs["op_features"], obs["machine_pred"],
            obs["machine_features"], obs["action_mask"],
        )
        return {**{key: value.copy() for key, value in fixed.items()}, **obs}
