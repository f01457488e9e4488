"""llmrouting state -> padded tensors: one node per replica and one for the arriving request.

The GNN reads it as a star graph (request <-> every replica); one score per replica node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces
from numba import njit

from schedgym.envs.llmrouting.kernels import (
    N_REPLICAS,
    ROLE_DECODE,
    ROLE_PREFILL,
    decode_batch,
    decode_time_s,
    pending_prefill_tokens,
    prefix_hit_tokens_at,
    waiting_at,
    write_migration_mask,
)

if TYPE_CHECKING:
    from schedgym.envs.llmrouting.simulator import ServingSimulator

#: Per-replica features, in column order.
REPLICA_FEATURES = (
    "waiting",  # requests waiting / 16
    "running",  # requests running / 64
    "pending_prefill",  # pending prefill tokens / (4 x token budget)
    "decode_batch",  # requests decoding / 64
    "kv_used",  # fraction of KV blocks in use
    "prefix_hit",  # prompt tokens of this request found in its prefix cache / prompt tokens
    "speed",  # speed factor
    "outstanding_vs_mean",  # (waiting + running) - mean over replicas, / 16
)
#: Features of the arriving request.
REQUEST_FEATURES = (
    "prompt",  # prompt tokens / 2048
    "prefix_blocks",  # shared-prefix blocks it names / 32
)
#: Per-replica features of memory, model speed and predicted work (read by policies built with
#: ``GnnConfig.routing_load_features``).
REPLICA_LOAD_FEATURES = (
    "kv_capacity",  # KV blocks / 16,384
    "decode_ms",  # one decode iteration at batch 1, context 1,024, over its speed, in ms / 20
    "predicted_tokens_left",  # predicted output tokens still to generate by its waiting and running requests / 16,384
    "prefill_only",  # 1 for a prefill replica of a disaggregated cluster
)
#: The arriving request's predicted output length / 1,024.
REQUEST_LOAD_FEATURES = ("predicted_output",)
_CLIP = 100.0


class LlmRoutingEncoder:
    """Fixed-size arrays (a ``gymnasium.spaces.Dict``; R = max_replicas):

    * ``replica_features`` float32 ``[R, len(REPLICA_FEATURES)]``, ``replica_mask`` int8 ``[R]``
    * ``request_features`` float32 ``[len(REQUEST_FEATURES)]`` (zeros at a rebalancing point)
    * ``replica_load_features`` float32 ``[R, len(REPLICA_LOAD_FEATURES)]``, ``request_load_features`` float32
      ``[len(REQUEST_LOAD_FEATURES)]``
    * ``action_mask`` int8 ``[R]``: the real replicas that take arrivals (not decode replicas); with ``migration``, ``[R + 2 R^2]``: routing to each
      replica (at an arrival), then, at a rebalancing point, migrating (kind, source, destination) at
      ``R + (kind * R + source) * R + destination`` (kind 0: a decoding request, 1: a queued one), with
      ``R`` itself (kind 0 from replica 0 to itself) the choice to migrate nothing
    * with ``migration``, ``rebalancing`` int8 ``[1]``: 1 at a rebalancing point, 0 at an arrival
    """

    def __init__(self, max_replicas: int, migration: bool = False) -> None:
        self.max_replicas = int(max_replicas)
        self.migration = bool(migration)

    @property
    def n_actions(self) -> int:
        r = self.max_replicas
        return r + 2 * r * r if self.migration else r

    @property
    def observation_space(self) -> spaces.Dict:
        r = self.max_replicas
        fields = {
            "replica_features": spaces.Box(-_CLIP, _CLIP, (r, len(REPLICA_FEATURES)), np.float32),
            "replica_mask": spaces.Box(0, 1, (r,), np.int8),
            "request_features": spaces.Box(-_CLIP, _CLIP, (len(REQUEST_FEATURES),), np.float32),
            "replica_load_features": spaces.Box(-_CLIP, _CLIP, (r, len(REPLICA_LOAD_FEATURES)), np.float32),
            "request_load_features": spaces.Box(-_CLIP, _CLIP, (len(REQUEST_LOAD_FEATURES),), np.float32),
            "action_mask": spaces.Box(0, 1, (self.n_actions,), np.int8),
        }
        if self.migration:
            fields["rebalancing"] = spaces.Box(0, 1, (1,), np.int8)
        return spaces.Dict(fields)

    def allocate(self, prefix: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Zeroed observation arrays with leading axes ``prefix`` (``()`` for one simulation, ``(B,)`` for a batch)."""
        return {key: np.zeros(prefix + box.shape, dtype=box.dtype) for key, box in self.observation_space.spaces.items()}

    def encode(self, sim: ServingSimulator, request: int) -> dict[str, np.ndarray]:
        """The state seen when routing ``request`` (the simulator advanced to its arrival), or with ``request``
        -1 (an encoder with ``migration``) at a rebalancing point, as fresh arrays.

        Raises:
            ValueError: if the simulation has more replicas than the encoding holds.
        """
        if len(sim.replicas) > self.max_replicas:
            raise ValueError(f"{len(sim.replicas)} replicas do not fit the encoding of {self.max_replicas}; raise max_replicas")
        obs = self.allocate(())
        write_observation(*sim.kernel_args, request, *observation_arrays(obs))
        if self.migration and request < 0:
            r = self.max_replicas
            write_migration_mask(*sim.kernel_args, obs["action_mask"][r:].reshape(2, r, r))
            obs["action_mask"][r] = 1  # migrate nothing
            obs["rebalancing"][0] = 1
        return obs


def observation_arrays(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The arrays :func:`write_observation` writes, in its argument order."""
    return (obs["replica_features"], obs["replica_mask"], obs["request_features"], obs["action_mask"], obs["replica_load_features"],
            obs["request_load_features"])


@njit(cache=True)
def write_observation(tables, state, request, replica_features, replica_mask, request_features, action_mask, replica_load_features,
                      request_load_features):
    """Write the observation of routing ``request`` in one simulation (kernel state) into the given arrays
    (``request`` -1: no request arrives, as at a rebalancing point; its features and prefix hits are 0)."""
    n_replicas = tables.config[N_REPLICAS]
    prompt = tables.prompt_tokens[request] if request >= 0 else 1
    outstanding_total = 0
    for r in range(n_replicas):
        outstanding_total += state.waiting_count[r] + state.running_count[r]
    outstanding_mean = outstanding_total / n_replicas
    replica_features[:] = 0.0
    for r in range(n_replicas):
        row = replica_features[r]
        row[0] = state.waiting_count[r] / 16
        row[1] = state.running_count[r] / 64
        row[2] = pending_prefill_tokens(state, r) / (4 * tables.token_budget[r])
        row[3] = decode_batch(state, r) / 64
        row[4] = 1.0 - state.free_blocks[r] / tables.kv_blocks[r]
        row[5] = prefix_hit_tokens_at(tables, state, r, request) / prompt if request >= 0 else 0.0
        row[6] = tables.speed[r]
        row[7] = (state.waiting_count[r] + state.running_count[r] - outstanding_mean) / 16
        for f in range(row.shape[0]):
            row[f] = min(max(row[f], -_CLIP), _CLIP)
    for r in range(replica_mask.shape[0]):
        replica_mask[r] = r < n_replicas
        action_mask[r] = r < n_replicas and request >= 0 and tables.role[r] != ROLE_DECODE
    request_features[:] = 0.0
    request_load_features[:] = 0.0
    if request >= 0:
        request_features[0] = prompt / 2048
        request_features[1] = (tables.prefix_start[request + 1] - tables.prefix_start[request]) / 32
        request_load_features[0] = tables.predicted_output[request] / 1024
    replica_load_features[:] = 0.0
    for r in range(n_replicas):
        left = 0.0
        for k in range(state.waiting_count[r]):
            waiting = waiting_at(state, r, k)
            left += max(tables.predicted_output[waiting] - state.generated[waiting], 1.0)
        for k in range(state.running_count[r]):
            running = state.running[r, k]
            left += max(tables.predicted_output[running] - state.generated[running], 1.0)
        row = replica_load_features[r]
        row[0] = tables.kv_blocks[r] / 16384
        row[1] = decode_time_s(tables, r, 1.0, 1024.0) / tables.speed[r] * 1000 / 20
        row[2] = min(left / 16384, _CLIP)
        row[3] = tables.role[r] == ROLE_PREFILL
