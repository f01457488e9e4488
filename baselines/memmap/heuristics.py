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

from schedgym.envs.memmap import MemMapInstance, MemMapSolution, Placement, benefit_s, kernels


def buffer_order(instance: MemMapInstance, name: str) -> np.ndarray:
    lifetime = instance.live_end - instance.live_start
    if name == "greedy-size":
        return np.lexsort((-lifetime, -instance.size_bytes))
    if name == "msa":
        return np.lexsort((-instance.size_bytes, -benefit_s(instance) / np.sqrt(instance.size_bytes)))
    if name == "first-fit":
        return np.lexsort((-instance.size_bytes, instance.live_start))
    raise ValueError(f"unknown placer {name!r}; choose greedy-size, msa or first-fit")


@dataclass
class GreedyPlacer:
    """``greedy-size``, ``msa`` or ``first-fit`` as a solver. The best-fit placers run the compiled completion
    :func:`~schedgym.envs.memmap.kernels.complete_best_fit` from the empty map (the rule ``ppo-mcts`` completes its
    leaves with); first-fit places through :class:`~schedgym.envs.memmap.Placement`."""

    name: str = "greedy-size"

    def solve(self, instance: MemMapInstance, *, time_limit: float | None = None, seed: int | None = None) -> MemMapSolution:
        order = buffer_order(instance, self.name)
        placement = Placement(instance)
        if self.name == "first-fit":
            for buffer in order.tolist():
                candidates = placement.candidates(buffer)
                if candidates:
                    placement.place(buffer, candidates[0][0])
            return placement.solution()
        state = kernels.allocate_state((), instance.n_buffers, instance.n_ops, 1)
        kernels.reset_episode(placement.tables, state, 0.0)  # every buffer slow and undecided (the runtime is not read)
        kernels.complete_best_fit(placement.tables, state, order)
        return MemMapSolution(state.offset.copy())
