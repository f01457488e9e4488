"""The memmap problem (the mallocGame): buffers of a compiled program in fast (at an offset) or slow memory -
instances, MiniMalloc loader, memory map + validator + roofline cost model, placement engine."""

from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.solution import SLOW, MemMapSolution, benefit_s, metrics, objective, op_times_s, validate
from schedgym.envs.memmap.placement import Placement
from schedgym.envs.memmap.loaders import data_file, load_buffer_csv, load_minimalloc_csv
from schedgym.envs.memmap.suites import SUITES, resolve_suite
from schedgym.envs.memmap.env import MemoryMappingEnv

__all__ = ["SUITES", "resolve_suite", "MemoryMappingEnv", "benefit_s", "MemMapInstance", "MemMapSolution", "Placement", "SLOW", "data_file", "load_buffer_csv", "load_minimalloc_csv", "metrics", "objective", "op_times_s", "validate"]
