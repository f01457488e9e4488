"""memmap baselines: greedy placers (greedy-size, MSA-like, first-fit) and CP-SAT."""

from schedgym.baselines.memmap.cpsat import CpSatMemMap
from schedgym.baselines.memmap.heuristics import GreedyPlacer

__all__ = ["CpSatMemMap", "GreedyPlacer"]
