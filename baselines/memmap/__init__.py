"""memmap baselines: greedy placers (greedy-size, MSA-like, first-fit), the exact packer ``pack`` and CP-SAT."""

from schedgym.baselines.memmap.cpsat import CpSatMemMap
from schedgym.baselines.memmap.heuristics import GreedyPlacer
from schedgym.baselines.memmap.pack import PackResult, PackSolver, pack_buffers

__all__ = ["CpSatMemMap", "GreedyPlacer", "PackResult", "PackSolver", "pack_buffers"]
