"""The memory map as a CP-SAT model with ``NoOverlap2D`` (time x offset), hinted with the greedy-size placement.

Packing instances: every buffer gets an offset inside the capacity, the peak (highest end offset) minimized; if no
such packing is found in time, the greedy-size packing (over the capacity, so invalid) is returned. Mapping: an
optional rectangle per buffer (present = fast) inside the capacity; minimize the modelled runtime, linearized as
``t_op >= compute_op`` and ``t_op >= sum of the op's accesses at the chosen memory's speed`` (integer ns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from schedgym.baselines.cpsat_solve import found_solution, solve_model
from schedgym.baselines.memmap.heuristics import GreedyPlacer
from schedgym.envs.memmap import SLOW, MemMapInstance, MemMapSolution

PS_PER_S = 1e12  # the mapping model counts time in picoseconds


@dataclass
class CpSatMemMap:
    """CP-SAT placer. Attributes: ``num_workers`` (search threads), ``default_time_limit_s``; ``last_status``: the
    CP-SAT status of the last solve (``OPTIMAL``, ``FEASIBLE``, ``UNKNOWN`` when it found no map in time and the
    fallback was returned, ...)."""

    name: str = "cpsat"
    num_workers: int = 2
    default_time_limit_s: float = 60.0
    last_status: str = field(default="", repr=False)

    def solve(
        self,
        instance: MemMapInstance,
        *,
        time_limit: float | None = None,
        seed: int | None = None,
        fixed: dict[int, int] | None = None,
        hint: MemMapSolution | None = None,
    ) -> MemMapSolution:
        """Best map found in ``time_limit`` seconds, starting from ``hint`` (default: the greedy-size map).

        ``fixed`` (buffer -> offset in bytes, or ``SLOW``) pins buffers already decided, e.g. by a placer halfway
        through a trace: the map then completes that partial map (mapping instances only). The pinned buffers
        override the hint; if CP-SAT finds no map, the partial map with every other buffer slow (always valid) is
        returned.
        """
        if fixed and instance.packing:
            raise ValueError("fixed buffers complete a partial map of a mapping instance; a packing instance places every buffer itself")
        for b, pinned in (fixed or {}).items():
            if pinned != SLOW and (pinned % instance.alignment_bytes or not 0 <= pinned <= instance.capacity_bytes - int(instance.size_bytes[b])):
                raise ValueError(f"fixed offset {pinned} of buffer {b} is not an aligned offset inside the fast memory")
        fallback = self._partial_map(instance, fixed) if fixed else GreedyPlacer("greedy-size").solve(instance)
        hint = hint if hint is not None else fallback
        model = cp_model.CpModel()
        n, align = instance.n_buffers, instance.alignment_bytes
        size = instance.size_bytes.astype(int)
        top = instance.capacity_bytes
        slots = [model.new_int_var(0, max(0, (top - int(size[b])) // align), f"y{b}") for b in range(n)]
        if instance.packing and (size > top).any():
            self.last_status = "INFEASIBLE"
            return fallback  # some buffer is larger than the whole capacity: no packing fits
        fast = [model.new_constant(1) if instance.packing else model.new_bool_var(f"f{b}") for b in range(n)]
        for b in np.flatnonzero(size > top).tolist():
            model.add(fast[b] == 0)  # larger than the fast memory: stays slow
        times, offsets = [], []
        for b in range(n):
            start, end = int(instance.live_start[b]), int(instance.live_end[b])
            offset = slots[b] * align
            if instance.packing:
                times.append(model.new_fixed_size_interval_var(start, end - start, f"t{b}"))
                offsets.append(model.new_interval_var(offset, int(size[b]), offset + int(size[b]), f"o{b}"))
            else:
                times.append(model.new_optional_fixed_size_interval_var(start, end - start, fast[b], f"t{b}"))
                offsets.append(model.new_optional_interval_var(offset, int(size[b]), offset + int(size[b]), fast[b], f"o{b}"))
        model.add_no_overlap_2d(times, offsets)
        if instance.packing:
            peak = model.new_int_var(0, top, "peak")
            for b in range(n):
                model.add(peak >= slots[b] * align + int(size[b]))
            model.minimize(peak)  # inside the capacity: finding any packing is the hard part
        else:
            model.minimize(self._runtime_ps(model, instance, fast))
        for b in range(n):
            if fixed and b in fixed:
                continue  # pinned below
            placed = hint.offset[b] != SLOW
            model.add_hint(slots[b], min(int(hint.offset[b]) // align, max(0, (top - int(size[b])) // align)) if placed else 0)
            if not instance.packing:
                model.add_hint(fast[b], int(placed))
        for b, pinned in (fixed or {}).items():
            model.add(fast[b] == int(pinned != SLOW))
            if pinned != SLOW:
                model.add(slots[b] == pinned // align)
        limit_s = time_limit if time_limit is not None else self.default_time_limit_s
        solver, status = solve_model(model, time_limit_s=limit_s, num_workers=self.num_workers, seed=seed)
        self.last_status = solver.status_name(status)
        if not found_solution(status):
            return fallback
        offset = np.array([solver.value(slots[b]) * align if solver.boolean_value(fast[b]) else SLOW for b in range(n)], dtype=np.int64)
        return MemMapSolution(offset)

    @staticmethod
    def _partial_map(instance: MemMapInstance, fixed: dict[int, int]) -> MemMapSolution:
        offset = np.full(instance.n_buffers, SLOW, dtype=np.int64)
        for b, pinned in fixed.items():
            offset[b] = pinned
        return MemMapSolution(offset)

    @staticmethod
    def _runtime_ps(model: cp_model.CpModel, instance: MemMapInstance, fast: list) -> cp_model.LinearExpr:
        fast_ps = 1.0 / instance.fast_bw_bytes_per_s * PS_PER_S
        slow_ps = 1.0 / instance.slow_bw_bytes_per_s * PS_PER_S
        by_op: list[list[tuple[int, float]]] = [[] for _ in range(instance.n_ops)]
        for op, buffer, nbytes in zip(instance.access_op.tolist(), instance.access_buffer.tolist(), instance.access_bytes.tolist()):
            by_op[op].append((buffer, nbytes))
        total = []
        for op, accesses in enumerate(by_op):
            compute = int(math.ceil(instance.op_compute_s[op] * PS_PER_S))
            slow_all = sum(int(math.ceil(nbytes * slow_ps)) for _, nbytes in accesses)
            t = model.new_int_var(compute, max(compute, slow_all), f"op{op}")
            if accesses:
                flags = [fast[b] for b, _ in accesses]
                savings = [int(math.ceil(nbytes * slow_ps)) - int(math.ceil(nbytes * fast_ps)) for _, nbytes in accesses]
                model.add(t + cp_model.LinearExpr.weighted_sum(flags, savings) >= slow_all)
            total.append(t)
        return cp_model.LinearExpr.sum(total)
