"""Named memmap suites: ``minimalloc`` (the six MiniMalloc "challenging" instances A-F, packing mode at their stated
capacity), ``minimalloc-heldout`` (the benchmark's other five, G-K), ``traced-models`` (two MLPs, two small ResNets
and two transformer stacks traced with torch.fx, mapping mode with fast memory at 25% and 50% of each trace's peak
live bytes) and ``traced-large`` (a deep ResNet and three deep transformers, 1,000-10,000 buffers, the same two
capacities). A buffer CSV path runs as a one-instance packing suite: at the capacity a MiniMalloc name gives
(``NAME.CAPACITY.csv``), otherwise at the peak of live bytes."""

from __future__ import annotations

import os

from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.loaders import MINIMALLOC_NAME, data_file, load_buffer_csv, load_minimalloc_csv
from schedgym.envs.memmap.tracer import CAPACITY_FRACTIONS, LARGE_MODELS, SUITE_MODELS, trace_model

MINIMALLOC = tuple(f"minimalloc_{k}" for k in "ABCDEF")
MINIMALLOC_HELDOUT = tuple(f"minimalloc_{k}" for k in "GHIJK")
SUITES: dict[str, str] = {
    "minimalloc": f"{len(MINIMALLOC)} MiniMalloc packing instances, capacity 1,048,576 bytes",
    "minimalloc-heldout": f"the other {len(MINIMALLOC_HELDOUT)} instances of that benchmark (G-K), never used to tune the packer",
    "traced-models": f"{len(SUITE_MODELS) * len(CAPACITY_FRACTIONS)} traced models (MLP, ResNet, transformer) at 25% / 50% of peak live bytes",
    "traced-large": f"{len(LARGE_MODELS) * len(CAPACITY_FRACTIONS)} traced programs of 1,000-10,000 buffers (deep ResNet, transformers) at 25% / 50% of peak live bytes",
}
_TRACED = {"traced-models": SUITE_MODELS, "traced-large": LARGE_MODELS}


def resolve_suite(spec: str) -> list[MemMapInstance]:
    """Instances of a suite, one shipped instance by name (``minimalloc_A``, ``resnet-32x4x32-b8-c25``) or a
    MiniMalloc CSV path."""
    if spec in _TRACED:
        return [trace_model(model, fraction) for model in _TRACED[spec] for fraction in CAPACITY_FRACTIONS]
    if spec in ("minimalloc", "minimalloc-heldout"):
        names = MINIMALLOC if spec == "minimalloc" else MINIMALLOC_HELDOUT
        return [load_minimalloc_csv(data_file(f"{name}.1048576.csv")) for name in names]
    if spec in MINIMALLOC + MINIMALLOC_HELDOUT:
        return [load_minimalloc_csv(data_file(f"{spec}.1048576.csv"))]
    for model in SUITE_MODELS + LARGE_MODELS:  # one traced model of a suite by its name
        for fraction in CAPACITY_FRACTIONS:
            if spec == f"{model.name}-c{int(round(fraction * 100))}":
                return [trace_model(model, fraction)]
    if os.path.exists(spec):
        return [load_minimalloc_csv(spec) if MINIMALLOC_NAME.match(os.path.basename(spec)) else load_buffer_csv(spec)]
    raise KeyError(f"unknown memmap suite {spec!r}; choose one of {', '.join(SUITES)}, {', '.join(MINIMALLOC)} or a buffer CSV path (NAME.CAPACITY.csv packs at CAPACITY)")
