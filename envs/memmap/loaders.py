"""MiniMalloc CSV instances (``id,lower,upper,size``, capacity in the file name ``NAME.CAPACITY.csv``).

MiniMalloc gives live ranges only, so a documented synthetic access model turns them into a program: every distinct
``lower`` is one op (in time order, compute time 0); each buffer is written in full by the op at its ``lower`` and
read in full by the last op that starts before its ``upper``.
"""

from __future__ import annotations

import csv
import os
import re
from importlib import resources
from pathlib import Path

import numpy as np

from schedgym.envs.errors import InstanceFormatError
from schedgym.envs.memmap.instance import MemMapInstance

_NAME = re.compile(r"^(?P<name>.+)\.(?P<capacity>\d+)\.csv$")


def data_file(name: str) -> Path:
    return Path(str(resources.files("schedgym.envs.memmap") / "data" / name))


def load_minimalloc_csv(path: str | os.PathLike, alignment_bytes: int = 1) -> MemMapInstance:
    """A MiniMalloc CSV as a packing instance at the capacity its name gives.

    Raises:
        InstanceFormatError: naming the line and what is wrong.
    """
    path = Path(path)
    fix = "a MiniMalloc CSV is named NAME.CAPACITY.csv and has the header id,lower,upper,size"
    match = _NAME.match(path.name)
    if not match:
        raise InstanceFormatError(str(path), None, "the file name does not give the capacity", fix)
    try:
        handle = open(path, newline="")
    except OSError as exc:
        raise InstanceFormatError(str(path), None, f"cannot read the file ({exc.strerror})", fix) from None
    lower, upper, size = [], [], []
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"lower", "upper", "size"} <= set(reader.fieldnames):
            raise InstanceFormatError(str(path), 1, f"header {reader.fieldnames} lacks lower/upper/size", fix)
        for line, row in enumerate(reader, start=2):
            try:
                lo, up, sz = int(row["lower"]), int(row["upper"]), int(row["size"])
            except (TypeError, ValueError):
                raise InstanceFormatError(str(path), line, f"non-integer field in {row}", fix) from None
            if up <= lo or sz <= 0 or lo < 0:
                raise InstanceFormatError(str(path), line, f"need 0 <= lower < upper and size > 0, got {lo}, {up}, {sz}", fix)
            lower.append(lo)
            upper.append(up)
            size.append(sz)
    if not size:
        raise InstanceFormatError(str(path), None, "no buffer in the file", fix)
    ticks = np.unique(lower)
    start = np.searchsorted(ticks, lower)
    last_op = np.searchsorted(ticks, upper, side="left") - 1  # last op starting before upper
    end = last_op + 1
    n = len(size)
    size_arr = np.array(size, dtype=np.int64)
    return MemMapInstance(
        name=match["name"], size_bytes=size_arr, live_start=start, live_end=end,
        capacity_bytes=int(match["capacity"]), alignment_bytes=alignment_bytes, op_compute_s=np.zeros(len(ticks)),
        access_op=np.concatenate([start, last_op]), access_buffer=np.concatenate([np.arange(n), np.arange(n)]),
        access_bytes=np.concatenate([size_arr, size_arr]).astype(float), packing=True, group="minimalloc",
        reference=f"MiniMalloc benchmark file {path.name}",
    )
