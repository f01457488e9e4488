"""Greedy memory placers: an order over the buffers and a rule picking one of the candidate offsets.

* ``greedy-size``: largest buffer first (ties: longest lifetime), best fit (the gap left smallest).
* ``msa``: XLA memory-space-assignment-like: buffers by decreasing benefit / sqrt(size), where the benefit is the
  modelled time saved by moving the buffer's own accesses from slow to fast memory; best fit.
* ``first-fit``: by live-range start (ties: larger first), the lowest offset.

A buffer with no candidate stays in slow memory (mapping instances); packing instances never run out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedgym.envs.memmap import MemMapInstance, MemMapSolution, Placement, benefit_s


def buffer_order(instance: MemMapInstance, name: str) -> np.ndarray:
    lifetime = instance.live_end - instance.live_start
    if name == "greedy-size":
        return np.lexsort((-lifetime, -instance.size_bytes))
    if name == "msa":
        return np.lexsort((-instance.size_bytes, -benefit_s(instance) / np.sqrt(instance.size_bytes)))
    if name == "first-fit":
        return np.lexsort((-instance.size_bytes, instance.live_start))
    raise ValueError(f"unknown placer {name!r}; choose greedy-size, msa or first-fit")


def best_fit(candidates: list[tuple[int, int]]) -> int:
    """The candidate leaving the smallest gap (the unbounded top gap last), ties to the lowest offset."""
    return min(candidates, key=lambda c: (c[1] < 0, c[1], c[0]))[0]


@dataclass
class GreedyPlacer:
    """``greedy-size``, ``msa`` or ``first-fit`` as a solver."""

    name: str = "greedy-size"

    def solve(self, instance: MemMapInstance, *, time_limit: float | None = None, seed: int | None = None) -> MemMapSolution:
        placement = Placement(instance)
        for buffer in buffer_order(instance, self.name).tolist():
            candidates = placement.candidates(buffer)
            if candidates:
                placement.place(buffer, candidates[0][0] if self.name == "first-fit" else best_fit(candidates))
        return placement.solution()
