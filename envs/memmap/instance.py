"""The memmap instance: the buffers of a compiled program, its ops, and a scarce fast memory.

Sizes and offsets are in bytes, times in seconds, bandwidths in bytes per second. Time is counted in ops: buffer
``b`` is live during ops ``[live_start[b], live_end[b])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def live_together(live_start: np.ndarray, live_end: np.ndarray) -> list[list[int]]:
    """For every buffer, the buffers live at the same time as it (a sweep over the buffers by start), given the
    half-open op ranges ``[live_start, live_end)`` int ``[n]``."""
    overlaps: list[list[int]] = [[] for _ in range(len(live_start))]
    active: list[int] = []
    for b in np.argsort(live_start, kind="stable").tolist():
        active = [a for a in active if live_end[a] > live_start[b]]
        for a in active:
            overlaps[a].append(b)
            overlaps[b].append(a)
        active.append(b)
    return overlaps


def live_bytes(live_start: np.ndarray, live_end: np.ndarray, size_bytes: np.ndarray) -> np.ndarray:
    """Bytes live in each op, int ``[max(live_end)]``."""
    events = np.zeros(int(live_end.max()) + 1, dtype=np.int64)
    np.add.at(events, live_start, size_bytes)
    np.add.at(events, live_end, -np.asarray(size_bytes))
    return np.cumsum(events)[:-1]


@dataclass(frozen=True, eq=False)
class MemMapInstance:
    """Buffers to place in fast memory (at an offset) or slow memory.

    Attributes:
        name: instance name.
        size_bytes: int ``[n_buffers]``.
        live_start / live_end: int ``[n_buffers]``, the half-open op range during which the buffer is live.
        capacity_bytes: fast-memory size.
        alignment_bytes: fast offsets must be multiples of this.
        op_compute_s: float ``[n_ops]``, compute time of each op.
        access_op / access_buffer / access_bytes: ``[n_accesses]``, bytes op ``access_op[k]`` reads or writes of
            buffer ``access_buffer[k]``.
        fast_bw_bytes_per_s / slow_bw_bytes_per_s: bandwidths of the two memories.
        packing: True for a pure packing instance (every buffer must go to fast memory; objective: peak offset).
        group: the class it is reported under.
        reference: where it comes from.
        lifetime: int ``[n_buffers]`` or None, how long each buffer is live in the source's own time units (a buffer
            CSV's ``upper - lower``, which the op numbering does not keep); None where the source has no time but
            ops. :meth:`live_time` gives it either way.
    """

    name: str
    size_bytes: np.ndarray
    live_start: np.ndarray
    live_end: np.ndarray
    capacity_bytes: int
    alignment_bytes: int
    op_compute_s: np.ndarray
    access_op: np.ndarray
    access_buffer: np.ndarray
    access_bytes: np.ndarray
    fast_bw_bytes_per_s: float = 3.0e12
    slow_bw_bytes_per_s: float = 5.0e10
    packing: bool = False
    group: str = "all"
    reference: str = ""
    lifetime: np.ndarray | None = None
    overlaps: list = field(init=False, repr=False)

    def __post_init__(self) -> None:
        arrays = {
            "size_bytes": np.asarray(self.size_bytes, dtype=np.int64),
            "live_start": np.asarray(self.live_start, dtype=np.int64),
            "live_end": np.asarray(self.live_end, dtype=np.int64),
            "op_compute_s": np.asarray(self.op_compute_s, dtype=float),
            "access_op": np.asarray(self.access_op, dtype=np.int64),
            "access_buffer": np.asarray(self.access_buffer, dtype=np.int64),
            "access_bytes": np.asarray(self.access_bytes, dtype=float),
        }
        n = len(arrays["size_bytes"])
        if n == 0 or len(arrays["live_start"]) != n or len(arrays["live_end"]) != n:
            raise ValueError(f"instance {self.name!r}: need a size and a live range per buffer")
        if (arrays["size_bytes"] <= 0).any() or (arrays["live_end"] <= arrays["live_start"]).any() or (arrays["live_start"] < 0).any():
            raise ValueError(f"instance {self.name!r}: sizes must be > 0 and live ranges non-empty [start, end) with start >= 0")
        if self.capacity_bytes <= 0 or self.alignment_bytes <= 0:
            raise ValueError(f"instance {self.name!r}: capacity and alignment must be positive")
        n_ops = len(arrays["op_compute_s"])
        k = len(arrays["access_op"])
        if len(arrays["access_buffer"]) != k or len(arrays["access_bytes"]) != k:
            raise ValueError(f"instance {self.name!r}: access_op, access_buffer and access_bytes must have one entry per access")
        if k and (arrays["access_op"].min() < 0 or arrays["access_op"].max() >= n_ops or arrays["access_buffer"].max() >= n):
            raise ValueError(f"instance {self.name!r}: an access names an op or buffer that does not exist")
        if self.lifetime is not None:
            arrays["lifetime"] = np.asarray(self.lifetime, dtype=np.int64)
            if arrays["lifetime"].shape != (n,) or (arrays["lifetime"] <= 0).any():
                raise ValueError(f"instance {self.name!r}: lifetime needs one value > 0 per buffer")
        for key, array in arrays.items():
            array.setflags(write=False)
            object.__setattr__(self, key, array)
        object.__setattr__(self, "overlaps", live_together(arrays["live_start"], arrays["live_end"]))

    @property
    def n_buffers(self) -> int:
        return len(self.size_bytes)

    @property
    def n_ops(self) -> int:
        return len(self.op_compute_s)

    def live_time(self) -> np.ndarray:
        """int ``[n_buffers]``: :attr:`lifetime`, or the number of ops each buffer is live where it is None."""
        return self.lifetime if self.lifetime is not None else self.live_end - self.live_start

    def peak_live_bytes(self) -> int:
        """Most bytes live at one time (a lower bound on any packing's peak)."""
        return int(live_bytes(self.live_start, self.live_end, self.size_bytes).max())

    def __repr__(self) -> str:
        kind = "packing" if self.packing else "mapping"
        return f"MemMapInstance({self.name!r}, {kind}, {self.n_buffers} buffers, {self.n_ops} ops, capacity {self.capacity_bytes})"
