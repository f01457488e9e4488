"""The memory map (an offset per buffer, or slow memory), its independent validator and the roofline cost model."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from schedgym.envs.memmap.instance import MemMapInstance

SLOW = -1


@dataclass
class MemMapSolution:
    """``offset`` int ``[n_buffers]``: the fast-memory offset of each buffer, or ``SLOW`` (-1)."""

    offset: np.ndarray

    def to_dict(self) -> dict:
        return {"offset": self.offset.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "MemMapSolution":
        return cls(np.asarray(data["offset"], dtype=np.int64))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def validate(instance: MemMapInstance, solution: MemMapSolution) -> list[str]:
    """Every violated constraint in words: offsets aligned and inside the capacity; two fast buffers live at the
    same time never overlap in offset; in packing mode every buffer is fast. Shares no code with the placement."""
    offset = np.asarray(solution.offset)
    n = instance.n_buffers
    if offset.shape != (n,):
        return [f"expected one offset per buffer ({n}), got shape {offset.shape}"]
    violations = []
    fast = np.flatnonzero(offset != SLOW)
    for b in range(n):
        o = int(offset[b])
        if o == SLOW:
            if instance.packing:
                violations.append(f"buffer {b}: in slow memory, but a packing instance places every buffer in fast memory")
            continue
        if o < 0 or o % instance.alignment_bytes:
            violations.append(f"buffer {b}: offset {o} is negative or not a multiple of {instance.alignment_bytes}")
        if o + instance.size_bytes[b] > instance.capacity_bytes:
            violations.append(f"buffer {b}: [{o}, {o + instance.size_bytes[b]}) exceeds the capacity {instance.capacity_bytes}")
    start, end, size = instance.live_start, instance.live_end, instance.size_bytes
    # Sweep the fast buffers by start; each is checked against those still live when it starts (numpy per buffer).
    active = np.empty(0, dtype=np.int64)
    for b in fast[np.argsort(start[fast], kind="stable")].tolist():
        active = active[end[active] > start[b]]
        clash = active[(offset[active] < offset[b] + size[b]) & (offset[b] < offset[active] + size[active])]
        violations.extend(f"buffers {a} and {b} are live at the same time and overlap in fast memory" for a in sorted(clash.tolist()))
        active = np.append(active, b)
    return violations


def op_times_s(instance: MemMapInstance, fast: np.ndarray) -> np.ndarray:
    """Roofline time of every op ``[n_ops]``: max(compute, fast bytes / fast bandwidth + slow bytes / slow bandwidth),
    ``fast`` a bool ``[n_buffers]``."""
    in_fast = fast[instance.access_buffer]
    fast_bytes = np.bincount(instance.access_op, instance.access_bytes * in_fast, minlength=instance.n_ops)
    slow_bytes = np.bincount(instance.access_op, instance.access_bytes * ~in_fast, minlength=instance.n_ops)
    memory_s = fast_bytes / instance.fast_bw_bytes_per_s + slow_bytes / instance.slow_bw_bytes_per_s
    return np.maximum(instance.op_compute_s, memory_s)


def benefit_s(instance: MemMapInstance) -> np.ndarray:
    """Per buffer, the time its accesses take in slow memory minus in fast memory ``[n_buffers]`` (s)."""
    per_byte = 1.0 / instance.slow_bw_bytes_per_s - 1.0 / instance.fast_bw_bytes_per_s
    return np.bincount(instance.access_buffer, instance.access_bytes, minlength=instance.n_buffers) * per_byte


def metrics(instance: MemMapInstance, solution: MemMapSolution) -> dict[str, float]:
    """``runtime_s`` (modelled program time), ``improvement_pct`` (vs everything slow), ``fast_bytes_peak`` (highest
    end offset used), ``placed_fraction`` (buffers in fast memory)."""
    fast = np.asarray(solution.offset) != SLOW
    runtime = float(op_times_s(instance, fast).sum())
    all_slow = float(op_times_s(instance, np.zeros(instance.n_buffers, dtype=bool)).sum())
    peak = int((solution.offset + instance.size_bytes)[fast].max()) if fast.any() else 0
    return {
        "runtime_s": runtime,
        "improvement_pct": 100.0 * (all_slow - runtime) / all_slow if all_slow > 0 else 0.0,
        "fast_bytes_peak": peak,
        "placed_fraction": float(fast.mean()),
    }


def objective(instance: MemMapInstance, solution: MemMapSolution) -> float:
    """Packing: the peak offset (bytes); mapping: the modelled runtime (s)."""
    values = metrics(instance, solution)
    return float(values["fast_bytes_peak"]) if instance.packing else values["runtime_s"]
