"""The exact packer ``pack``: its packings pass the independent validator, it proves infeasibility, and it agrees
with CP-SAT on small instances."""

import numpy as np
import pytest

from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer, PackSolver, pack_buffers
from schedgym.baselines.memmap.pack import independent_parts
from schedgym.envs.memmap import MemMapInstance, MemMapSolution, metrics, validate
from schedgym.envs.memmap.suites import resolve_suite


def packing_instance(start, end, size, capacity) -> MemMapInstance:
    n_ops = int(np.max(end))
    return MemMapInstance("random", np.asarray(size), np.asarray(start), np.asarray(end), capacity, 1, np.zeros(n_ops),
                          np.array([], dtype=int), np.array([], dtype=int), np.array([]), packing=True)


def random_buffers(rng, n=12, horizon=10):
    start = rng.integers(0, horizon, n)
    end = start + rng.integers(1, 6, n)
    size = rng.integers(1, 8, n)
    return start, end, size


def test_example_packs_exactly_at_capacity():
    # three buffers live across [0, 21), two pairs of short ones on top: 12 bytes is the peak of live bytes
    start, end, size = np.array([0, 3, 0, 9, 0]), np.array([3, 9, 9, 21, 21]), np.array([4, 4, 4, 4, 4])
    result = pack_buffers(start, end, size, 12)
    assert result.status == "packed"
    assert validate(packing_instance(start, end, size, 12), MemMapSolution(result.offset)) == []


def test_proves_infeasibility_below_the_peak_of_live_bytes():
    rng = np.random.default_rng(1)
    start, end, size = random_buffers(rng)
    lower = packing_instance(start, end, size, 10**6).peak_live_bytes()
    result = pack_buffers(start, end, size, lower - 1, time_limit_s=5)
    assert result.status == "infeasible" and result.offset is None


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_cpsat_on_the_lowest_peak(seed):
    rng = np.random.default_rng(seed)
    start, end, size = random_buffers(rng)
    instance = packing_instance(start, end, size, 10**6)
    result = pack_buffers(start, end, size, 10**6, time_limit_s=10)
    ours = MemMapSolution(result.offset)
    assert validate(instance, ours) == []
    cpsat = CpSatMemMap(default_time_limit_s=10).solve(instance)
    assert validate(instance, cpsat) == []
    assert metrics(instance, ours)["fast_bytes_peak"] == metrics(instance, cpsat)["fast_bytes_peak"]
    # the peak it returns is the lowest: one byte less is proved impossible
    peak = metrics(instance, ours)["fast_bytes_peak"]
    assert pack_buffers(start, end, size, peak - 1, time_limit_s=10).status == "infeasible"


def test_independent_parts_split_where_no_buffer_crosses():
    start, end = np.array([0, 1, 3, 4, 4]), np.array([2, 3, 4, 6, 5])
    assert [part.tolist() for part in independent_parts(start, end)] == [[0, 1], [2], [3, 4]]


def test_packs_a_minimalloc_instance_within_capacity():
    instance = resolve_suite("minimalloc_B")[0]
    solver = PackSolver()
    solution = solver.solve(instance, time_limit=20)
    assert solver.last_result.status == "packed"
    assert validate(instance, solution) == []
    assert validate(instance, GreedyPlacer("greedy-size").solve(instance)) != []  # ... and does not fit


def test_mapping_mode_is_valid_and_no_worse_than_msa():
    for instance in resolve_suite("traced-models")[:4]:
        solution = PackSolver().solve(instance, time_limit=2)
        assert validate(instance, solution) == []
        msa = GreedyPlacer("msa").solve(instance)
        assert metrics(instance, solution)["runtime_s"] <= metrics(instance, msa)["runtime_s"]


def test_packs_at_the_peak_of_live_bytes_where_parts_come_apart_during_the_search():
    # 20 buffers whose packing at their peak of live bytes (74) needs pieces searched apart after cuts appear
    start = np.array([17, 17, 16, 18, 15, 18, 12, 15, 16, 18, 19, 16, 16, 18, 13, 16, 13, 17, 18, 16])
    end = np.array([21, 20, 18, 24, 19, 21, 18, 22, 17, 25, 24, 23, 21, 20, 17, 23, 17, 21, 24, 23])
    size = np.array([3, 1, 9, 2, 5, 7, 8, 6, 9, 6, 7, 3, 5, 3, 7, 8, 7, 8, 5, 6])
    instance = packing_instance(start, end, size, 74)
    result = pack_buffers(start, end, size, 74, time_limit_s=10, minimize_peak=False)
    assert result.status == "packed"
    assert validate(instance, MemMapSolution(result.offset)) == []


def test_rejects_empty_buffers():
    with pytest.raises(ValueError, match="sizes > 0"):
        pack_buffers(np.array([0, 1]), np.array([2, 3]), np.array([4, 0]), 8)


@pytest.mark.parametrize("seed", range(6))
def test_lifetimes_reorder_the_search_but_not_the_lowest_peak(seed):
    # the lifetimes are keys of the priorities only (which buffer to try first), never part of the constraints
    rng = np.random.default_rng(100 + seed)
    start, end, size = random_buffers(rng, n=16, horizon=14)
    lifetime = rng.integers(1, 100, len(size))
    plain = pack_buffers(start, end, size, 10**6, time_limit_s=10)
    timed = pack_buffers(start, end, size, 10**6, time_limit_s=10, lifetime=lifetime)
    instance = packing_instance(start, end, size, 10**6)
    assert validate(instance, MemMapSolution(timed.offset)) == []
    assert metrics(instance, MemMapSolution(timed.offset))["fast_bytes_peak"] == metrics(instance, MemMapSolution(plain.offset))["fast_bytes_peak"]
    with pytest.raises(ValueError, match="lifetime"):
        pack_buffers(start, end, size, 10**6, lifetime=lifetime[1:])
