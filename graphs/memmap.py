"""memmap state -> padded tensors: one node per buffer, edges between buffers live at the same time, and the
candidate placements of the buffer being decided."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from gymnasium import spaces
from numba import njit

if TYPE_CHECKING:
    from schedgym.envs.memmap.instance import MemMapInstance

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

    :meth:`reset` writes what stays fixed for an episode; the compiled :func:`update_observation` then changes only
    what a decision changes (the decided buffer's row, the current flag, the candidates).
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

    def allocate(self, prefix: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Zeroed observation arrays with leading axes ``prefix`` (``()`` for one episode, ``(B,)`` for a batch)."""
        return {key: np.zeros(prefix + box.shape, dtype=box.dtype) for key, box in self.observation_space.spaces.items()}

    def reset(self, observation: dict[str, np.ndarray], instance: MemMapInstance, benefit_s: np.ndarray) -> None:
        """Write the episode's constant parts into one episode's ``observation`` arrays (and clear the rest).

        Raises:
            ValueError: if the instance has more buffers than the encoding holds.
        """
        if instance.n_buffers > self.max_buffers:
            raise ValueError(f"{instance.n_buffers} buffers do not fit the encoding of {self.max_buffers}; raise max_buffers")
        n = instance.n_buffers
        static = np.zeros((self.max_buffers, len(BUFFER_FEATURES)), dtype=np.float32)
        static[:n, 0] = instance.size_bytes / instance.capacity_bytes
        static[:n, 1] = instance.live_start / instance.n_ops
        static[:n, 2] = instance.live_end / instance.n_ops
        static[:n, 3] = benefit_s / max(float(benefit_s.max()), 1e-30)
        observation["buffer_features"][:] = np.clip(static, -_CLIP, _CLIP)  # of the columns set per step only the offset can exceed 1
        degree = [len(o) for o in instance.overlaps]
        kept = min(sum(degree), self.max_edges)
        observation["edges"][:] = -1
        if kept:
            observation["edges"][:kept, 0] = np.repeat(np.arange(n), degree)[:kept]
            observation["edges"][:kept, 1] = np.concatenate([np.asarray(o, dtype=np.int64) for o in instance.overlaps if o])[:kept]
        observation["buffer_mask"][:] = np.arange(self.max_buffers) < n


@njit(cache=True)
def update_observation(
    decided, decided_offset, upcoming, capacity_bytes, packing, candidate_offset, candidate_left, n_candidates,
    buffer_features, candidate_features, action_mask,
):
    """One episode's observation after buffer ``decided`` (-1: none) went to ``decided_offset`` (-1: slow), with
    buffer ``upcoming`` (-1: none, the episode is over) to decide next among its ``n_candidates`` candidates."""
    if decided >= 0:
        row = buffer_features[decided]
        fast = decided_offset >= 0
        row[4] = 1.0 if fast else 0.0
        row[5] = min(decided_offset / capacity_bytes, _CLIP) if fast else 0.0
        row[6] = 1.0
        row[7] = 0.0
    if upcoming >= 0:
        buffer_features[upcoming, 7] = 1.0
    candidate_features[:] = 0.0
    action_mask[:] = 0
    action_mask[0] = 0 if packing else 1
    for k in range(min(n_candidates, candidate_features.shape[0])):
        left = candidate_left[k]
        candidate_features[k, 0] = min(max(candidate_offset[k] / capacity_bytes, -_CLIP), _CLIP)
        candidate_features[k, 1] = 1.0 if left < 0 else min(left / capacity_bytes, _CLIP)
        action_mask[k + 1] = 1
