"""Named memmap suites: ``minimalloc`` (the six MiniMalloc "challenging" instances, packing mode at their stated
capacity). A MiniMalloc CSV path (``NAME.CAPACITY.csv``) runs as a one-instance packing suite."""

from __future__ import annotations

import os

from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.loaders import data_file, load_minimalloc_csv

MINIMALLOC = tuple(f"minimalloc_{k}" for k in "ABCDEF")
SUITES: dict[str, str] = {"minimalloc": f"{len(MINIMALLOC)} MiniMalloc packing instances, capacity 1,048,576 bytes"}


def resolve_suite(spec: str) -> list[MemMapInstance]:
    """Instances of a suite, one shipped instance by name (``minimalloc_A``) or a MiniMalloc CSV path."""
    if spec == "minimalloc":
        return [load_minimalloc_csv(data_file(f"{name}.1048576.csv")) for name in MINIMALLOC]
    if spec in MINIMALLOC:
        return [load_minimalloc_csv(data_file(f"{spec}.1048576.csv"))]
    if os.path.exists(spec):
        return [load_minimalloc_csv(spec)]
    raise KeyError(f"unknown memmap suite {spec!r}; choose one of {', '.join(SUITES)}, {', '.join(MINIMALLOC)} or a NAME.CAPACITY.csv path")
