"""Placing buffers one at a time: the free offset gaps a buffer can go to, given the buffers already placed.

One placement engine serves the env and every greedy baseline. Packing instances place without a ceiling (the
leaderboard then reports how far above the capacity a packing ends); mapping instances stop at the capacity.
"""

from __future__ import annotations

import numpy as np

from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.solution import SLOW, MemMapSolution


class Placement:
    """Offsets chosen so far. ``offset[b]`` is ``SLOW`` until buffer ``b`` is placed in fast memory; offsets change
    through :meth:`place` only (it drops the candidates kept for the buffer last asked about)."""

    def __init__(self, instance: MemMapInstance) -> None:
        self.instance = instance
        self.limit_bytes = None if instance.packing else instance.capacity_bytes
        self.offset = np.full(instance.n_buffers, SLOW, dtype=np.int64)
        self._candidates: tuple[int, list[tuple[int, int]]] | None = None  # (buffer, its candidates) until a placement

    def free_gaps(self, buffer: int) -> list[tuple[int, int]]:
        """Maximal ``[low, high)`` offset ranges free during ``buffer``'s whole live range (the last one is
        unbounded, ``high = -1``, on a packing instance)."""
        inst = self.instance
        busy = sorted((int(self.offset[b]), int(self.offset[b] + inst.size_bytes[b])) for b in inst.overlaps[buffer] if self.offset[b] != SLOW)
        gaps, low = [], 0
        for begin, end in busy:
            if begin > low:
                gaps.append((low, begin))
            low = max(low, end)
        if self.limit_bytes is None:
            gaps.append((low, -1))
        elif low < self.limit_bytes:
            gaps.append((low, self.limit_bytes))
        return gaps

    def candidates(self, buffer: int) -> list[tuple[int, int]]:
        """(aligned offset at the bottom of a gap, bytes left in the gap after the buffer) for every gap it fits in,
        lowest offset first; the unbounded top gap reports ``-1`` bytes left."""
        if self._candidates is not None and self._candidates[0] == buffer:
            return self._candidates[1]
        size = int(self.instance.size_bytes[buffer])
        align = self.instance.alignment_bytes
        result = []
        for low, high in self.free_gaps(buffer):
            start = -(-low // align) * align
            if high == -1:
                result.append((start, -1))
            elif start + size <= high:
                result.append((start, high - start - size))
        self._candidates = (buffer, result)
        return result

    def place(self, buffer: int, offset: int) -> None:
        """Put ``buffer`` at ``offset``. Raises ``ValueError`` if that is not the bottom of a free gap it fits in."""
        if self.offset[buffer] != SLOW:
            raise ValueError(f"buffer {buffer} is already placed at {self.offset[buffer]}")
        if offset not in {o for o, _ in self.candidates(buffer)}:
            raise ValueError(f"offset {offset} is not a candidate for buffer {buffer}; candidates: {[o for o, _ in self.candidates(buffer)][:10]}")
        self.offset[buffer] = offset
        self._candidates = None

    def copy(self) -> Placement:
        """An independent copy (same instance, own offsets)."""
        twin = Placement(self.instance)
        twin.offset[:] = self.offset
        twin._candidates = self._candidates
        return twin

    def solution(self) -> MemMapSolution:
        return MemMapSolution(self.offset.copy())
