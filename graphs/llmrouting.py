"""llmrouting state -> padded tensors: one node per replica and one for the arriving request.

The GNN reads it as a star graph (request <-> every replica); one score per replica node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

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

    def encode(self, sim: ServingSimulator, request: int) -> dict[str, np.ndarray]:
        """The state seen when routing ``request`` (the simulator advanced to its arrival)."""
        n = len(sim.replicas)
        if n > self.max_replicas:
            raise ValueError(f"{n} replicas do not fit the encoding of {self.max_replicas}; raise max_replicas")
        prompt = int(sim.workload.prompt_tokens[request])
        features = np.zeros((self.max_replicas, len(REPLICA_FEATURES)), dtype=np.float32)
        outstanding = np.array([len(r.waiting) + len(r.running) for r in sim.replicas], dtype=float)
        for k, replica in enumerate(sim.replicas):
            spec = replica.spec
            features[k] = (
                len(replica.waiting) / 16, len(replica.running) / 64,
                sim.pending_prefill_tokens(k) / (4 * spec.token_budget), sim.decode_batch(k) / 64,
                1.0 - replica.free_blocks / spec.kv_blocks, sim.prefix_hit_tokens_at(k, request) / prompt,
                spec.speed, (outstanding[k] - outstanding.mean()) / 16,
            )
        prefix_blocks = 0 if sim.workload.prefix_ids is None else len(sim.workload.prefix_ids[request])
        mask = (np.arange(self.max_replicas) < n).astype(np.int8)
        return {
            "replica_features": np.clip(features, -_CLIP, _CLIP),
            "replica_mask": mask,
            "request_features": np.array([prompt / 2048, prefix_blocks / 32], dtype=np.float32),
            "action_mask": mask.copy(),
        }
