"""Buffer CSVs (``id,lower,upper,size``: MiniMalloc's format, which idealloc and ML compilers' allocation dumps also
use) as memmap instances.

A CSV gives live ranges only, so a documented synthetic access model turns it into a program: every distinct
``lower`` is one op (in time order, compute time 0); each buffer is written in full by the op at its ``lower`` and
read in full by the last op that starts before its ``upper``. A MiniMalloc file names its capacity
(``NAME.CAPACITY.csv``); any other CSV is packed at a capacity given, or mapped with fast memory at a fraction of its
peak live bytes.
"""

from __future__ import annotations

import csv
import os
import re
from importlib import resources
from pathlib import Path

import numpy as np

from schedgym.envs.errors import InstanceFormatError
from schedgym.envs.memmap.instance import MemMapInstance, live_bytes

MINIMALLOC_NAME = re.compile(r"^(?P<name>.+)\.(?P<capacity>\d+)\.csv$")
_FIX = "a buffer CSV has the header id,lower,upper,size (half-open live ranges [lower, upper), sizes in bytes)"


def data_file(name: str) -> Path:
    return Path(str(resources.files("schedgym.envs.memmap") / "data" / name))


def load_minimalloc_csv(path: str | os.PathLike, alignment_bytes: int = 1) -> MemMapInstance:
    """A MiniMalloc CSV as a packing instance at the capacity its name gives.

    Raises:
        InstanceFormatError: naming the line and what is wrong.
    """
    path = Path(path)
    match = MINIMALLOC_NAME.match(path.name)
    if not match:
        raise InstanceFormatError(str(path), None, "the file name does not give the capacity", "a MiniMalloc CSV is named NAME.CAPACITY.csv; " + _FIX)
    return load_buffer_csv(path, capacity_bytes=int(match["capacity"]), alignment_bytes=alignment_bytes, name=match["name"], group="minimalloc")


def load_buffer_csv(
    path: str | os.PathLike,
    *,
    capacity_bytes: int | None = None,
    capacity_fraction: float | None = None,
    alignment_bytes: int = 1,
    name: str | None = None,
    group: str | None = None,
) -> MemMapInstance:
    """A buffer CSV as a packing instance (``capacity_bytes``; default the peak of live bytes, the least any packing
    can reach) or, with ``capacity_fraction``, a mapping instance whose fast memory holds that fraction of the peak
    of live bytes (rounded down to the alignment).

    Raises:
        InstanceFormatError: naming the line and what is wrong.
        ValueError: if both a capacity and a fraction are given.
    """
    if capacity_bytes is not None and capacity_fraction is not None:
        raise ValueError("give capacity_bytes (a packing instance) or capacity_fraction (a mapping instance), not both")
    path = Path(path)
    start, end, last_op, size, n_ops, lifetime = _read_buffers(path)
    peak = int(live_bytes(start, end, size).max())
    packing = capacity_fraction is None
    if packing:
        capacity = peak if capacity_bytes is None else int(capacity_bytes)
    else:
        capacity = max(alignment_bytes, int(peak * capacity_fraction) // alignment_bytes * alignment_bytes)
    n = len(size)
    stem = name or path.name.removesuffix(".csv")
    return MemMapInstance(
        name=stem if packing else f"{stem}-c{int(round(capacity_fraction * 100))}", size_bytes=size, live_start=start, live_end=end,
        capacity_bytes=capacity, alignment_bytes=alignment_bytes, op_compute_s=np.zeros(n_ops),
        access_op=np.concatenate([start, last_op]), access_buffer=np.concatenate([np.arange(n), np.arange(n)]),
        access_bytes=np.concatenate([size, size]).astype(float), packing=packing, group=group or ("csv" if packing else "csv-mapping"),
        reference=f"buffer CSV {path.name}", lifetime=lifetime,
    )


def _read_buffers(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """(live_start, live_end, last op, size_bytes, ops, lifetime ``upper - lower``) of a buffer CSV, ops numbered by
    distinct ``lower``."""
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise InstanceFormatError(str(path), None, f"cannot read the file ({exc.strerror})", _FIX) from None
    lower, upper, size = [], [], []
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"lower", "upper", "size"} <= set(reader.fieldnames):
            raise InstanceFormatError(str(path), 1, f"header {reader.fieldnames} lacks lower/upper/size", _FIX)
        for line, row in enumerate(reader, start=2):
            try:
                lo, up, sz = int(row["lower"]), int(row["upper"]), int(row["size"])
            except (TypeError, ValueError):
                raise InstanceFormatError(str(path), line, f"non-integer field in {row}", _FIX) from None
            if up <= lo or sz <= 0 or lo < 0:
                raise InstanceFormatError(str(path), line, f"need 0 <= lower < upper and size > 0, got {lo}, {up}, {sz}", _FIX)
            lower.append(lo)
            upper.append(up)
            size.append(sz)
    if not size:
        raise InstanceFormatError(str(path), None, "no buffer in the file", _FIX)
    ticks = np.unique(lower)
    start = np.searchsorted(ticks, lower)
    last_op = np.searchsorted(ticks, upper, side="left") - 1  # last op starting before upper
    lifetime = np.array(upper, dtype=np.int64) - np.array(lower, dtype=np.int64)
    return start, last_op + 1, last_op, np.array(size, dtype=np.int64), len(ticks), lifetime
