"""memmap state -> padded tensors: one node per buffer, edges between buffers live at the same time, and the
candidate placements of the buffer being decided."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:
    from schedgym.envs.memmap.placement import Placement

#: Per-buffer features, in column order.
BUFFER_FEATURES = (
    "size",  # size / capacity
    "live_start",  # first op / ops
    "live_end",  # end op / ops
    "benefit",  # modelled time saved in fast memory / the largest such saving
    "placed_fast",  # 1 if placed in fast memory
    "offset",  # offset / capacity (0 if not fast)
    "decided",  # 1 once decided (fast or slow)
    "current",  # 1 for the buffer being decided
)
#: Per-candidate features (action ``k + 1`` places the buffer at candidate ``k``).
CANDIDATE_FEATURES = (
    "offset",  # offset / capacity
    "gap_left",  # bytes left in the gap / capacity (1 for the unbounded top of a packing)
)
_CLIP = 100.0


class MemMapEncoder:
    """Fixed-size arrays (N = max_buffers, K = candidates, E = max_edges):

    * ``buffer_features`` float32 ``[N, len(BUFFER_FEATURES)]``, ``buffer_mask`` int8 ``[N]``
    * ``edges`` int64 ``[E, 2]``: pairs of buffers live at the same time (both directions), -1 rows are padding
    * ``candidate_features`` float32 ``[K, len(CANDIDATE_FEATURES)]``
    * ``action_mask`` int8 ``[K + 1]``: action 0 = slow memory, action k + 1 = candidate k
    """

    def __init__(self, max_buffers: int, candidates: int, max_edges: int) -> None:
        self.max_buffers, self.candidates, self.max_edges = int(max_buffers), int(candidates), int(max_edges)

    @property
    def observation_space(self) -> spaces.Dict:
        n, k, e = self.max_buffers, self.candidates, self.max_edges
        return spaces.Dict(
            {
                "buffer_features": spaces.Box(-_CLIP, _CLIP, (n, len(BUFFER_FEATURES)), np.float32),
                "buffer_mask": spaces.Box(0, 1, (n,), np.int8),
                "edges": spaces.Box(-1, n - 1, (e, 2), np.int64),
                "candidate_features": spaces.Box(-_CLIP, _CLIP, (k, len(CANDIDATE_FEATURES)), np.float32),
                "action_mask": spaces.Box(0, 1, (k + 1,), np.int8),
            }
        )

    def reset(self, placement: Placement, benefit_s: np.ndarray) -> None:
        inst = placement.instance
        if inst.n_buffers > self.max_buffers:
            raise ValueError(f"{inst.n_buffers} buffers do not fit the encoding of {self.max_buffers}; raise max_buffers")
        n = inst.n_buffers
        static = np.zeros((self.max_buffers, len(BUFFER_FEATURES)), dtype=np.float32)
        static[:n, 0] = inst.size_bytes / inst.capacity_bytes
        static[:n, 1] = inst.live_start / inst.n_ops
        static[:n, 2] = inst.live_end / inst.n_ops
        static[:n, 3] = benefit_s / max(float(benefit_s.max()), 1e-30)
        self._static = np.clip(static, -_CLIP, _CLIP)  # clipped once: of the columns set per step only the offset can exceed 1
        pairs = [(a, b) for a in range(n) for b in inst.overlaps[a]]
        edges = np.full((self.max_edges, 2), -1, dtype=np.int64)
        kept = pairs[: self.max_edges]
        if kept:
            edges[: len(kept)] = kept
        self._edges = edges
        self._mask = (np.arange(self.max_buffers) < n).astype(np.int8)

    def encode(self, placement: Placement, current: int, decided: np.ndarray, candidates: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        inst = placement.instance
        n = inst.n_buffers
        features = self._static.copy()
        fast = placement.offset >= 0
        features[:n, 4] = fast
        features[:n, 5] = np.where(fast, np.minimum(placement.offset / inst.capacity_bytes, _CLIP), 0.0)
        features[:n, 6] = decided
        if current < n:
            features[current, 7] = 1.0
        candidate_features = np.zeros((self.candidates, len(CANDIDATE_FEATURES)), dtype=np.float32)
        mask = np.zeros(self.candidates + 1, dtype=np.int8)
        mask[0] = 0 if inst.packing else 1
        for k, (offset, left) in enumerate(candidates[: self.candidates]):
            candidate_features[k] = (offset / inst.capacity_bytes, 1.0 if left < 0 else left / inst.capacity_bytes)
            mask[k + 1] = 1
        return {
            "buffer_features": features,
            "buffer_mask": self._mask.copy(),
            "edges": self._edges.copy(),
            "candidate_features": np.clip(candidate_features, -_CLIP, _CLIP),
            "action_mask": mask,
        }
