"""llmrouting state -> padded tensors: one node per replica and one for the arriving request.

The GNN reads it as a star graph (request <-> every replica); one score per replica node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces
from numba import njit

from schedgym.envs.llmrouting.kernels import N_REPLICAS, decode_batch, pending_prefill_tokens, prefix_hit_tokens_at

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
_CLIP = 100.0


class LlmRoutingEncoder:
    """Fixed-size arrays (a ``gymnasium.spaces.Dict``; R = max_replicas):

    * ``replica_features`` float32 ``[R, len(REPLICA_FEATURES)]``, ``replica_mask`` int8 ``[R]``
    * ``request_features`` float32 ``[len(REQUEST_FEATURES)]``
    * ``action_mask`` int8 ``[R]``: the real replicas
    """

    def __init__(self, max_replicas: int) -> None:
        self.max_replicas = int(max_replicas)

    @property
    def observation_space(self) -> spaces.Dict:
        r = self.max_replicas
        return spaces.Dict(
            {
                "replica_features": spaces.Box(-_CLIP, _CLIP, (r, len(REPLICA_FEATURES)), np.float32),
                "replica_mask": spaces.Box(0, 1, (r,), np.int8),
                "request_features": spaces.Box(-_CLIP, _CLIP, (len(REQUEST_FEATURES),), np.float32),
                "action_mask": spaces.Box(0, 1, (r,), np.int8),
            }
        )

    def allocate(self, prefix: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Zeroed observation arrays with leading axes ``prefix`` (``()`` for one simulation, ``(B,)`` for a batch)."""
        return {key: np.zeros(prefix + box.shape, dtype=box.dtype) for key, box in self.observation_space.spaces.items()}

    def encode(self, sim: ServingSimulator, request: int) -> dict[str, np.ndarray]:
        """The state seen when routing ``request`` (the simulator advanced to its arrival), as fresh arrays.

        Raises:
            ValueError: if the simulation has more replicas than the encoding holds.
        """
        if len(sim.replicas) > self.max_replicas:
            raise ValueError(f"{len(sim.replicas)} replicas do not fit the encoding of {self.max_replicas}; raise max_replicas")
        obs = self.allocate(())
        write_observation(*sim.kernel_args, request, obs["replica_features"], obs["replica_mask"], obs["request_features"], obs["action_mask"])
        return obs


@njit(cache=True)
def write_observation(tables, state, request, replica_features, replica_mask, request_features, action_mask):
    """Write the observation of routing ``request`` in one simulation (kernel state) into the given arrays."""
    n_replicas = tables.config[N_REPLICAS]
    prompt = tables.prompt_tokens[request]
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
        row[5] = prefix_hit_tokens_at(tables, state, r, request) / prompt
        row[6] = tables.speed[r]
        row[7] = (state.waiting_count[r] + state.running_count[r] - outstanding_mean) / 16
        for f in range(row.shape[0]):
            row[f] = min(max(row[f], -_CLIP), _CLIP)
    for r in range(replica_mask.shape[0]):
        replica_mask[r] = r < n_replicas
        action_mask[r] = r < n_replicas
    request_features[0] = prompt / 2048
    request_features[1] = (tables.prefix_start[request + 1] - tables.prefix_start[request]) / 32
