"""The compiled placement logic of memmap: the only place where the free gaps of a buffer are found and buffers
are placed.

:class:`~schedgym.envs.memmap.placement.Placement` (so every greedy placer), ``MemoryMappingEnv`` and
:class:`~schedgym.envs.memmap.batched.MemMapBatch` (B episodes in stacked arrays) hold their state as the numpy
arrays of :class:`MemMapTables` and :class:`MemMapState` and call these functions on them; the batched engine passes
one slot's views from inside the compiled loop :func:`step_batch`. Compiled with numba (``cache=True``), as the
other problems' kernels are.

An episode decides the buffers in a fixed order (``order``): slow memory, or fast memory at one of the candidate
offsets (the aligned bottoms of the offset gaps free during the buffer's whole live range, lowest first). The
modelled runtime (sum over ops of max(compute, fast bytes / fast bandwidth + slow bytes / slow bandwidth)) is
updated per decision from the ops the buffer is accessed by, not recomputed.

Sizes: N buffers, O ops, A accesses, M overlap entries (each pair of buffers live at the same time, both ways),
K candidates kept per decision. Arrays may be larger than the instance (the batched engine pads every slot).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from schedgym.graphs.memmap import update_observation

#: ``MemMapTables.limits`` fields: buffers, ops, packing (1) or mapping (0), fast capacity, alignment.
N_BUFFERS, N_OPS, PACKING, CAPACITY, ALIGNMENT = range(5)
#: ``MemMapState.counts`` fields: buffers decided, highest end offset in fast memory, candidates of the next buffer.
STEP, PEAK, N_CANDIDATES = range(3)
#: ``MemMapState.time_s`` fields: modelled runtime now, with every buffer slow.
RUNTIME, ALL_SLOW = range(2)
SLOW = -1  # as schedgym.envs.memmap.solution.SLOW


class MemMapTables(NamedTuple):
    """The instance as the kernels read it (fixed for an episode).

    Attributes:
        limits: int64 ``[5]``: see ``N_BUFFERS`` ... ``ALIGNMENT``.
        size_bytes: int64 ``[N]``.
        overlap_start / overlaps: int64 ``[N + 1]`` / ``[M]``: buffer b is live at the same time as
            ``overlaps[overlap_start[b]:overlap_start[b + 1]]``.
        order: int64 ``[N]``: the buffers in decision order (largest first, then earliest live).
        access_start / access_op / access_bytes: ``[N + 1]`` / ``[A]``: buffer b is read or written by ops
            ``access_op[access_start[b]:access_start[b + 1]]``, that many bytes each.
        op_compute_s: float ``[O]``; slow_bytes_all: float ``[O]``: bytes each op moves when every buffer is slow.
        bandwidth_bytes_per_s: float ``[2]``: (fast, slow).
    """

    limits: np.ndarray
    size_bytes: np.ndarray
    overlap_start: np.ndarray
    overlaps: np.ndarray
    order: np.ndarray
    access_start: np.ndarray
    access_op: np.ndarray
    access_bytes: np.ndarray
    op_compute_s: np.ndarray
    slow_bytes_all: np.ndarray
    bandwidth_bytes_per_s: np.ndarray


class MemMapState(NamedTuple):
    """The state of one episode.

    Attributes:
        offset: int64 ``[N]``: fast-memory offset per buffer, ``SLOW`` (-1) if not in fast memory.
        fast_bytes / slow_bytes: float ``[O]``: bytes each op moves to and from each memory.
        candidate_offset / candidate_left: int64 ``[K]``: the next buffer's candidates: offset, and bytes left in
            the gap after the buffer (-1: the unbounded top gap of a packing).
        counts: int64 ``[3]``: see ``STEP``, ``PEAK``, ``N_CANDIDATES``.
        time_s: float ``[2]``: see ``RUNTIME``, ``ALL_SLOW``.
    """

    offset: np.ndarray
    fast_bytes: np.ndarray
    slow_bytes: np.ndarray
    candidate_offset: np.ndarray
    candidate_left: np.ndarray
    counts: np.ndarray
    time_s: np.ndarray


def allocate_tables(prefix: tuple[int, ...], n_buffers: int, n_ops: int, n_accesses: int, n_overlaps: int) -> MemMapTables:
    """Empty tables of the given capacities, with leading axes ``prefix`` (``()`` for one episode, ``(B,)``)."""
    N, O, A, M = n_buffers, n_ops, n_accesses, n_overlaps
    return MemMapTables(
        limits=np.zeros(prefix + (5,), dtype=np.int64),
        size_bytes=np.zeros(prefix + (N,), dtype=np.int64),
        overlap_start=np.zeros(prefix + (N + 1,), dtype=np.int64),
        overlaps=np.zeros(prefix + (M,), dtype=np.int64),
        order=np.zeros(prefix + (N,), dtype=np.int64),
        access_start=np.zeros(prefix + (N + 1,), dtype=np.int64),
        access_op=np.zeros(prefix + (A,), dtype=np.int64),
        access_bytes=np.zeros(prefix + (A,)),
        op_compute_s=np.zeros(prefix + (O,)),
        slow_bytes_all=np.zeros(prefix + (O,)),
        bandwidth_bytes_per_s=np.ones(prefix + (2,)),
    )


def allocate_state(prefix: tuple[int, ...], n_buffers: int, n_ops: int, candidates: int) -> MemMapState:
    """Empty state of the given capacities; :func:`reset_episode` fills it."""
    return MemMapState(
        offset=np.full(prefix + (n_buffers,), SLOW, dtype=np.int64),
        fast_bytes=np.zeros(prefix + (n_ops,)),
        slow_bytes=np.zeros(prefix + (n_ops,)),
        candidate_offset=np.zeros(prefix + (candidates,), dtype=np.int64),
        candidate_left=np.zeros(prefix + (candidates,), dtype=np.int64),
        counts=np.zeros(prefix + (3,), dtype=np.int64),
        time_s=np.zeros(prefix + (2,)),
    )


def table_sizes(instance) -> tuple[int, int, int, int]:
    """(buffers, ops, accesses, overlap entries) of a :class:`~schedgym.envs.memmap.instance.MemMapInstance`."""
    return instance.n_buffers, instance.n_ops, len(instance.access_op), sum(len(o) for o in instance.overlaps)


def fill_tables(tables: MemMapTables, instance) -> None:
    """Write ``instance`` into one episode's ``tables`` (arrays at least as large as it)."""
    n, n_ops, n_accesses, n_overlaps = table_sizes(instance)
    tables.limits[:] = (n, n_ops, int(instance.packing), instance.capacity_bytes, instance.alignment_bytes)
    tables.size_bytes[:n] = instance.size_bytes
    degree = np.array([len(o) for o in instance.overlaps], dtype=np.int64)
    tables.overlap_start[: n + 1] = np.concatenate(([0], np.cumsum(degree)))
    if n_overlaps:
        tables.overlaps[:n_overlaps] = np.concatenate([np.asarray(o, dtype=np.int64) for o in instance.overlaps if o])
    tables.order[:n] = np.lexsort((instance.live_start, -instance.size_bytes))
    by_buffer = np.argsort(instance.access_buffer, kind="stable")
    tables.access_start[: n + 1] = np.concatenate(([0], np.cumsum(np.bincount(instance.access_buffer, minlength=n))))
    tables.access_op[:n_accesses] = instance.access_op[by_buffer]
    tables.access_bytes[:n_accesses] = instance.access_bytes[by_buffer]
    tables.op_compute_s[:n_ops] = instance.op_compute_s
    tables.slow_bytes_all[:n_ops] = np.bincount(instance.access_op, instance.access_bytes, minlength=n_ops)
    tables.bandwidth_bytes_per_s[:] = (instance.fast_bw_bytes_per_s, instance.slow_bw_bytes_per_s)


@njit(cache=True)
def find_candidates(tables, offset, buffer, out_offset, out_left):
    """Write the first ``len(out_offset)`` candidates of ``buffer`` given the placed ``offset`` s; returns how
    many were written. A candidate is the aligned bottom of a maximal offset gap free during the buffer's whole
    live range that the buffer fits in (any gap's, on a packing instance, whose top gap is unbounded)."""
    first, last = tables.overlap_start[buffer], tables.overlap_start[buffer + 1]
    begins = np.empty(last - first, dtype=np.int64)
    ends = np.empty(last - first, dtype=np.int64)
    n_busy = 0
    for k in range(first, last):
        other = tables.overlaps[k]
        if offset[other] != SLOW:
            begins[n_busy] = offset[other]
            ends[n_busy] = offset[other] + tables.size_bytes[other]
            n_busy += 1
    by_begin = np.argsort(begins[:n_busy])
    size, align, capacity = tables.size_bytes[buffer], tables.limits[ALIGNMENT], tables.limits[CAPACITY]
    count, low = 0, 0
    for i in by_begin:
        if count == len(out_offset):
            return count
        if begins[i] > low:
            start = -(-low // align) * align
            if start + size <= begins[i]:
                out_offset[count] = start
                out_left[count] = begins[i] - start - size
                count += 1
        low = max(low, ends[i])
    if count < len(out_offset):
        start = -(-low // align) * align
        if tables.limits[PACKING]:
            out_offset[count] = start
            out_left[count] = -1
            count += 1
        elif low < capacity and start + size <= capacity:
            out_offset[count] = start
            out_left[count] = capacity - start - size
            count += 1
    return count


@njit(cache=True)
def _op_time(tables, state, op):
    memory_s = state.fast_bytes[op] / tables.bandwidth_bytes_per_s[0] + state.slow_bytes[op] / tables.bandwidth_bytes_per_s[1]
    return max(tables.op_compute_s[op], memory_s)


@njit(cache=True)
def reset_episode(tables, state, all_slow_s):
    """Everything slow, the first buffer's candidates found; ``all_slow_s`` is the all-slow modelled runtime."""
    n, n_ops = tables.limits[N_BUFFERS], tables.limits[N_OPS]
    state.offset[:n] = SLOW
    state.fast_bytes[:n_ops] = 0.0
    state.slow_bytes[:n_ops] = tables.slow_bytes_all[:n_ops]
    state.counts[:] = 0
    state.time_s[RUNTIME] = all_slow_s
    state.time_s[ALL_SLOW] = all_slow_s
    state.counts[N_CANDIDATES] = find_candidates(tables, state.offset, tables.order[0], state.candidate_offset, state.candidate_left)


@njit(cache=True)
def place(tables, state, buffer, offset):
    """Put ``buffer`` in fast memory at ``offset`` (a candidate): its ops' bytes move to fast memory and the
    runtime and peak follow."""
    state.offset[buffer] = offset
    for k in range(tables.access_start[buffer], tables.access_start[buffer + 1]):
        op, moved = tables.access_op[k], tables.access_bytes[k]
        before = _op_time(tables, state, op)
        state.fast_bytes[op] += moved
        state.slow_bytes[op] -= moved
        state.time_s[RUNTIME] += _op_time(tables, state, op) - before
    state.counts[PEAK] = max(state.counts[PEAK], offset + tables.size_bytes[buffer])


@njit(cache=True)
def decide(tables, state, choice):
    """Decide the next buffer: slow memory (``choice`` -1) or candidate ``choice``; then find the candidates of
    the buffer after it. Returns the buffer decided."""
    buffer = tables.order[state.counts[STEP]]
    if choice >= 0:
        place(tables, state, buffer, state.candidate_offset[choice])
    state.counts[STEP] += 1
    state.counts[N_CANDIDATES] = 0
    if state.counts[STEP] < tables.limits[N_BUFFERS]:
        state.counts[N_CANDIDATES] = find_candidates(
            tables, state.offset, tables.order[state.counts[STEP]], state.candidate_offset, state.candidate_left
        )
    return buffer


@njit(cache=True)
def slot_tables(tables, b):
    """Slot ``b``'s views of batched tables (arrays with a leading ``[B]`` axis)."""
    return MemMapTables(
        tables.limits[b], tables.size_bytes[b], tables.overlap_start[b], tables.overlaps[b], tables.order[b],
        tables.access_start[b], tables.access_op[b], tables.access_bytes[b], tables.op_compute_s[b],
        tables.slow_bytes_all[b], tables.bandwidth_bytes_per_s[b],
    )


@njit(cache=True)
def slot_state(state, b):
    """Slot ``b``'s views of a batched state."""
    return MemMapState(
        state.offset[b], state.fast_bytes[b], state.slow_bytes[b], state.candidate_offset[b], state.candidate_left[b],
        state.counts[b], state.time_s[b],
    )


@njit(cache=True, parallel=True)
def step_batch(tables, state, choices, buffer_features, candidate_features, action_mask):
    """In every slot b, :func:`decide` ``choices[b]`` (already checked legal), then update its observation
    (:func:`observe`). Slots run on numba's threads."""
    for b in prange(len(choices)):
        run_tables, run_state = slot_tables(tables, b), slot_state(state, b)
        buffer = decide(run_tables, run_state, choices[b])
        observe(run_tables, run_state, buffer, buffer_features[b], candidate_features[b], action_mask[b])


@njit(cache=True)
def observe(tables, state, decided, buffer_features, candidate_features, action_mask):
    """Update one episode's observation after buffer ``decided`` (-1: none, at the start) was decided."""
    step = state.counts[STEP]
    upcoming = tables.order[step] if step < tables.limits[N_BUFFERS] else -1
    update_observation(
        decided, state.offset[decided] if decided >= 0 else SLOW, upcoming, tables.limits[CAPACITY], tables.limits[PACKING] == 1,
        state.candidate_offset, state.candidate_left, state.counts[N_CANDIDATES], buffer_features, candidate_features, action_mask,
    )


@njit(cache=True)
def best_fit_index(candidate_left, count):
    """Which of ``count`` candidates (lowest offset first) leaves the smallest gap after the buffer (the unbounded
    top of a packing last; ties to the lowest offset): the best-fit rule of the greedy placers and of the
    completions. -1 if there is none."""
    best = -1
    for k in range(count):
        left, best_left = candidate_left[k], candidate_left[best] if best >= 0 else 0
        if best < 0 or (left >= 0 and best_left < 0) or ((left < 0) == (best_left < 0) and left < best_left):
            best = k
    return best


@njit(cache=True)
def complete_best_fit(tables, state, order):
    """Place every buffer not decided yet, in the order of ``order`` (int ``[N]``, every buffer once), each at the
    best fit among all its gaps, or slow memory if none fits; the decided buffers stay as they are. Afterwards every
    buffer counts as decided (``STEP`` = N). From the first decision, with the MSA-like order, this is the ``msa``
    placer's map."""
    n = tables.limits[N_BUFFERS]
    decided = np.zeros(n, dtype=np.bool_)
    for i in range(state.counts[STEP]):
        decided[tables.order[i]] = True
    widest = 1
    for b in range(n):
        widest = max(widest, tables.overlap_start[b + 1] - tables.overlap_start[b] + 1)
    gap_offset = np.empty(widest, dtype=np.int64)
    gap_left = np.empty(widest, dtype=np.int64)
    for b in order:
        if decided[b]:
            continue
        best = best_fit_index(gap_left, find_candidates(tables, state.offset, b, gap_offset, gap_left))
        if best >= 0:
            place(tables, state, b, gap_offset[best])
    state.counts[STEP] = n
    state.counts[N_CANDIDATES] = 0


def episode_return(tables: MemMapTables, state: MemMapState) -> float:
    """The sum of the env's rewards from the episode's start to this state: the fractional runtime improvement over
    all-slow (mapping), minus the peak offset over the capacity (packing)."""
    if tables.limits[PACKING]:
        return -float(state.counts[PEAK]) / float(tables.limits[CAPACITY])
    all_slow = float(state.time_s[ALL_SLOW])
    return (all_slow - float(state.time_s[RUNTIME])) / all_slow if all_slow > 0 else 0.0
