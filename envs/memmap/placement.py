"""Placing buffers one at a time: the free offset gaps a buffer can go to, given the buffers already placed.

One placement engine serves the env and every greedy baseline. Packing instances place without a ceiling (the
leaderboard then reports how far above the capacity a packing ends); mapping instances stop at the capacity.
"""

from __future__ import annotations

import numpy as np

from schedgym.envs.memmap import kernels
from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.solution import SLOW, MemMapSolution


class Placement:
    """Offsets chosen so far. ``offset[b]`` is ``SLOW`` until buffer ``b`` is placed in fast memory; offsets change
    through :meth:`place` (or the env's kernels, which write the same array). The gaps are found by :func:`schedgym.envs.memmap.kernels.find_candidates` on
    ``tables`` (the instance as the kernels read it), the function the env and the batched engine use.

    Args:
        tables: the instance's kernel tables, if already built (the env shares its own).
        offset: the offset array to place into (the env passes its episode state's), default a fresh one.
    """

    def __init__(self, instance: MemMapInstance, tables: kernels.MemMapTables | None = None, offset: np.ndarray | None = None) -> None:
        self.instance = instance
        if tables is None:
            tables = kernels.allocate_tables((), *kernels.table_sizes(instance))
            kernels.fill_tables(tables, instance)
        self.tables = tables
        self.offset = np.full(instance.n_buffers, SLOW, dtype=np.int64) if offset is None else offset

    def candidates(self, buffer: int) -> list[tuple[int, int]]:
        """(aligned offset at the bottom of a free gap, bytes left in the gap after the buffer) for every gap free
        during ``buffer``'s whole live range that it fits in, lowest offset first; the unbounded top gap of a
        packing instance reports ``-1`` bytes left. Mapping instances stop at the capacity."""
        room = len(self.instance.overlaps[buffer]) + 1  # at most one gap below each busy range, and the top one
        offsets, left = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
        count = kernels.find_candidates(self.tables, self.offset, buffer, offsets, left)
        return list(zip(offsets[:count].tolist(), left[:count].tolist()))

    def place(self, buffer: int, offset: int) -> None:
        """Put ``buffer`` at ``offset``. Raises ``ValueError`` if that is not the bottom of a free gap it fits in."""
        if self.offset[buffer] != SLOW:
            raise ValueError(f"buffer {buffer} is already placed at {self.offset[buffer]}")
        allowed = [o for o, _ in self.candidates(buffer)]
        if offset not in allowed:
            raise ValueError(f"offset {offset} is not a candidate for buffer {buffer}; candidates: {allowed[:10]}")
        self.offset[buffer] = offset

    def copy(self, offset: np.ndarray | None = None) -> Placement:
        """An independent copy (same instance and tables; its own offsets: a copy of these, or ``offset``)."""
        return Placement(self.instance, self.tables, self.offset.copy() if offset is None else offset)

    def solution(self) -> MemMapSolution:
        return MemMapSolution(self.offset.copy())
