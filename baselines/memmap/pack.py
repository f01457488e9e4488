"""``pack``: exact search for a packing of buffers within a capacity, over canonical solutions.

The problem: every buffer ``b`` (live during the op range ``[live_start[b], live_end[b])``, ``size_bytes[b]``) gets
an offset so that buffers live at the same time never overlap in offset and every buffer ends at or below the
capacity.

**Canonical solutions.** Sort any packing by offset and drop each buffer, in that order, as low as it goes: onto
the highest earlier buffer it is live with, or to 0. The result is again a packing, and its buffers, in offset
order, each *rest* on a buffer placed before them. So it is enough to search over orders in which offsets never
decrease and every buffer goes where it rests. Buffers at one offset are never live together, so their order does
not matter: they are placed in a fixed rank order.

**Inference** (prunes a node before its children are tried), with the *level* of an op (a *section*) the highest
top placed in it or the last offset, whichever is higher (nothing new goes below the last offset):

* *stack*: the buffers still to place that are live in an op are stacked in it, each from the lowest offset it
  can start at: if for some r, r + the bytes of those starting at r or above exceeds the capacity, no completion
  exists (a one-machine schedule with release dates);
* *fit*: some buffer still to place no longer fits below the capacity;
* *independent parts*: the ops split where no buffer is live across the cut; each part is searched alone.

**Dominance.** A child is left out when another unplaced buffer fits entirely below the child's offset (moving
that buffer down keeps any completion a packing, and then it comes first). A buffer whose every live-together buffer
is placed ("hatless") goes where it rests at once, outside the search. What remains to decide depends only on the
placed set, the last offset and the levels of the ops still open: a failed state is remembered under a 64-bit hash
of exactly that (with the smallest tie rank it failed with) and not searched again.

**Search.** A depth-first loop over explicit arrays, compiled with numba, run for a node budget and resumable.
Children are tried lowest offset first, then by rank. The search is heavy-tailed in the rank order, so four static
orders (:func:`preorders`) run side by side, resumed in turn with doubling node budgets; :func:`pack_buffers`
checks the wall clock between budgets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from schedgym.baselines.memmap.heuristics import GreedyPlacer, buffer_order
from schedgym.envs.memmap.instance import MemMapInstance, live_bytes, live_together
from schedgym.envs.memmap.solution import SLOW, MemMapSolution, objective

#: search outcomes.
PACKED, INFEASIBLE, BUDGET = 0, 1, 2
#: number of entries of the failed-state table (a power of two; 16 bytes each).
MEMO_SLOTS = 1 << 19
#: linear probes from a state's home slot before the table gives up on it (the state is then not remembered).
MEMO_PROBES = 64
#: nodes per call of the compiled search (the wall clock is read between calls).
NODES_PER_CALL = 20_000
#: node budget of each search in the first round of the portfolio (doubled every round).
FIRST_BUDGET = 2_000


@dataclass
class PackResult:
    """What :func:`pack_buffers` found.

    Attributes:
        offset: int ``[n_buffers]`` offsets in bytes of a packing within the capacity, or None.
        status: ``"packed"``, ``"infeasible"`` (proved: no packing within the capacity exists) or ``"timeout"``.
        nodes: search nodes visited.
        seconds: wall time.
        truncated: True if some node kept only its ``max_children`` best children (then "infeasible" is not a
            proof and is reported as "timeout").
    """

    offset: np.ndarray | None
    status: str
    nodes: int
    seconds: float
    truncated: bool = False


@njit(cache=True)
def _mix(h, value):
    """A 64-bit hash step (splitmix64 finaliser of h ^ value)."""
    z = (h ^ np.uint64(value)) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _resting(rest_bytes, alignment):
    """The lowest aligned offset at or above ``rest_bytes`` (where a buffer resting there goes)."""
    return -(-rest_bytes // alignment) * alignment


@njit(cache=True)
def _memo_slot(memo_key, h):
    """The slot of the failed-state table holding ``h``, or the empty slot where it would go, within
    ``MEMO_PROBES`` linear probes of its home slot; -1 if those are all taken by other states."""
    mask = np.uint64(len(memo_key) - 1)
    slot = h & mask
    for _ in range(MEMO_PROBES):
        if memo_key[slot] == 0 or memo_key[slot] == h:
            return np.int64(slot)
        slot = (slot + np.uint64(1)) & mask
    return np.int64(-1)


class _Search:
    """The resumable state of one search (numpy arrays the compiled loop updates in place).

    Sizes: n buffers, S sections (ops), M overlap entries. ``rank`` int ``[n]`` is the static priority (a
    :func:`preorders` entry) that orders children at the same offset and buffers placed at the same offset.
    """

    def __init__(self, start: np.ndarray, end: np.ndarray, size: np.ndarray, overlap_start: np.ndarray, overlaps: np.ndarray,
                 capacity: int, alignment: int, max_children: int, rank: np.ndarray) -> None:
        n, n_sections = len(size), int(end.max())
        lifetime = end - start
        by_section = [np.arange(n)[(start <= t) & (end > t)] for t in range(n_sections)]
        section_start = np.concatenate(([0], np.cumsum([len(x) for x in by_section]))).astype(np.int64)
        section_buffers = np.concatenate(by_section).astype(np.int64)
        self.tables = (start, end, size, rank, overlap_start, overlaps, section_start, section_buffers, np.array([capacity, alignment, max_children], dtype=np.int64))
        per_node = min(n, max_children)
        self.arrays = (
            np.zeros(n_sections, dtype=np.int64),  # floor: highest top placed in each section
            np.zeros(n_sections, dtype=np.int64),  # unplaced_bytes: bytes still to place in each section
            np.zeros(n, dtype=np.int64),  # rest: highest top of the placed buffers live with each buffer
            np.full(n, SLOW, dtype=np.int64),  # offset
            np.zeros(int(lifetime.sum()) + 1, dtype=np.int64),  # trail of overwritten floors
            np.zeros(int(overlap_start[-1]) + 1, dtype=np.int64),  # trail of overwritten rests
            np.zeros(n + 1, dtype=np.int64),  # floor trail top per depth
            np.zeros(n + 1, dtype=np.int64),  # rest trail top per depth
            np.zeros(n * per_node + 1, dtype=np.int64),  # children per depth, in the order tried
            np.zeros(n + 2, dtype=np.int64),  # first child per depth
            np.zeros(n + 1, dtype=np.int64),  # next child to try per depth (-1: none)
            np.zeros(n + 1, dtype=np.int64),  # chosen buffer per depth
            np.zeros(n + 1, dtype=np.uint64),  # placed-set hash per depth
            np.zeros(n + 1, dtype=np.uint64),  # state hash per depth
            np.zeros(n, dtype=np.int64),  # open_neighbours: unplaced buffers live with each buffer
            np.zeros(n, dtype=np.int64),  # hatless buffers placed, by depth
            np.zeros(n + 2, dtype=np.int64),  # first hatless entry per depth
            np.zeros(MEMO_SLOTS, dtype=np.uint64),  # failed-state keys (0 = empty)
            np.zeros(MEMO_SLOTS, dtype=np.int64),  # smallest tie rank each failed with
            np.zeros(7, dtype=np.int64),  # counters: see DEPTH ... OVERFLOW
        )
        self.zobrist = np.random.default_rng(0).integers(1, 2**63, size=n, dtype=np.int64).astype(np.uint64)

    def run(self, node_budget: int) -> int:
        return _search(*self.tables, self.zobrist, *self.arrays, node_budget)

    @property
    def offset(self) -> np.ndarray:
        return self.arrays[3]

    @property
    def counters(self) -> np.ndarray:
        return self.arrays[-1]


#: ``_Search.counters`` fields.
DEPTH, ENTERING, NODES, TRUNCATED, STARTED, PLACED, OVERFLOW = range(7)


@njit(cache=True)
def _stack_too_high(section_start, section_buffers, size, offset, rest, last, alignment, capacity, stack_at, stack_size):
    """True if in some section the unplaced buffers live there cannot all be stacked below the capacity, each at or
    above the lowest offset it can start at (a one-machine schedule with release dates: the top is at least
    ``r + the bytes of the buffers that start at r or above``, for every r)."""
    for s in range(len(section_start) - 1):
        count = 0
        for k in range(section_start[s], section_start[s + 1]):
            b = section_buffers[k]
            if offset[b] == SLOW:
                stack_at[count] = max(last, _resting(rest[b], alignment))
                stack_size[count] = size[b]
                count += 1
        if count < 2:
            continue
        order = np.argsort(stack_at[:count])
        above = 0
        for i in range(count - 1, -1, -1):
            above += stack_size[order[i]]
            if stack_at[order[i]] + above > capacity:
                return True
    return False


@njit(cache=True)
def _expand(start, end, size, rank, section_start, section_buffers, limits, floor, unplaced_bytes, rest, offset, last, tie, children, lowest,
            stack_at, stack_size):
    """Inference and children of the node where the last buffer went to offset ``last`` (its rank ``tie``).

    Writes the children, in the order to try them (lowest offset, then rank), to ``children`` and returns their
    number, or -1 if the node is dead. A child is dominated, and left out, if some other unplaced buffer fits
    entirely below the child's offset: moving that buffer down there keeps any completion a packing, and then it
    comes first. ``lowest`` ``[S]``, ``stack_at`` and ``stack_size`` ``[n]`` are scratch."""
    n, n_sections = len(size), len(floor)
    capacity, alignment, max_children = limits[0], limits[1], limits[2]
    lowest[:] = capacity + 1
    first_top, second_top, first_buffer = capacity + 1, capacity + 1, -1
    count = 0
    for b in range(n):
        if offset[b] != SLOW:
            continue
        resting = _resting(rest[b], alignment)
        at = max(last, resting)
        top = at + size[b]
        if top > capacity:
            return -1
        if top < first_top:
            first_top, second_top, first_buffer = top, first_top, b
        elif top < second_top:
            second_top = top
        for s in range(start[b], end[b]):
            lowest[s] = min(lowest[s], at)
        if at > resting or (at == last and rank[b] < tie):
            continue  # floating above what it rests on, or after a buffer of higher rank at the same offset
        children[count] = b
        count += 1
    for s in range(n_sections):
        if unplaced_bytes[s] > 0 and lowest[s] + unplaced_bytes[s] > capacity:
            return -1
    if _stack_too_high(section_start, section_buffers, size, offset, rest, last, alignment, capacity, stack_at, stack_size):
        return -1
    kept = 0
    for i in range(count):
        b = children[i]
        at = max(last, _resting(rest[b], alignment))
        if at < (second_top if b == first_buffer else first_top):
            children[kept] = b
            stack_at[kept] = at * n + rank[b]
            kept += 1
    order = np.argsort(stack_at[:kept])
    chosen = children[:kept][order]
    kept = min(kept, max_children)
    children[:kept] = chosen[:kept]
    return kept


@njit(cache=True)
def _state_hash(placed_hash, floor, unplaced_bytes, last):
    """Hash of what the rest of the search depends on: the placed set, the last offset and the level of every
    section with buffers still to place."""
    n_sections = len(floor)
    h = _mix(placed_hash, last)
    for s in range(n_sections):
        if unplaced_bytes[s] > 0:
            h = _mix(h, max(floor[s], last) * n_sections + s)
    return h if h != 0 else np.uint64(1)


@njit(cache=True)
def _search(start, end, size, rank, overlap_start, overlaps, section_start, section_buffers, limits, zobrist, floor, unplaced_bytes, rest, offset, floor_trail,
            rest_trail, floor_top, rest_top, children, child_start, next_child, chosen, placed_hash, node_hash, open_neighbours,
            hatless, hatless_top, memo_key, memo_tie, counters, node_budget):
    """Run the depth-first search for up to ``node_budget`` nodes from where it stopped; returns ``PACKED``,
    ``INFEASIBLE`` or ``BUDGET``."""
    n = len(size)
    max_children = limits[2]
    if counters[STARTED] == 0:
        counters[STARTED] = 1
        for b in range(n):
            open_neighbours[b] = overlap_start[b + 1] - overlap_start[b]
            if open_neighbours[b] == 0:
                offset[b] = 0  # live with no other buffer: at the bottom, for good
                counters[PLACED] += 1
            else:
                for s in range(start[b], end[b]):
                    unplaced_bytes[s] += size[b]
        counters[DEPTH], counters[ENTERING] = 0, 1
    lowest = np.empty(len(floor), dtype=np.int64)
    stack_at = np.empty(n, dtype=np.int64)
    stack_size = np.empty(n, dtype=np.int64)
    scratch = np.empty(n, dtype=np.int64)
    budget_end = counters[NODES] + node_budget
    while counters[NODES] < budget_end:
        depth = counters[DEPTH]
        last = offset[chosen[depth - 1]] if depth > 0 else 0
        tie = rank[chosen[depth - 1]] if depth > 0 else -1
        if counters[ENTERING] == 1:
            counters[ENTERING] = 0
            counters[NODES] += 1
            if counters[PLACED] == n:
                return PACKED
            h = _state_hash(placed_hash[depth], floor, unplaced_bytes, last)
            node_hash[depth] = h
            count = -1
            slot = _memo_slot(memo_key, h)
            failed_before = slot >= 0 and memo_key[slot] == h and tie >= memo_tie[slot]
            if counters[OVERFLOW] == 0 and not failed_before:
                count = _expand(start, end, size, rank, section_start, section_buffers, limits, floor, unplaced_bytes, rest, offset, last, tie, scratch, lowest,
                                stack_at, stack_size)
            base = child_start[depth]
            if count < 0:
                next_child[depth] = -1
                child_start[depth + 1] = base
            else:
                if count == max_children and count < n - counters[PLACED]:
                    counters[TRUNCATED] = 1
                children[base : base + count] = scratch[:count]
                child_start[depth + 1] = base + count
                next_child[depth] = base
        if next_child[depth] < 0 or next_child[depth] >= child_start[depth + 1]:
            if next_child[depth] >= 0:  # every child failed: remember the state
                h = node_hash[depth]
                slot = _memo_slot(memo_key, h)
                if slot >= 0 and (memo_key[slot] != h or tie < memo_tie[slot]):
                    memo_key[slot] = h
                    memo_tie[slot] = tie
            if depth == 0:
                return INFEASIBLE
            depth -= 1
            counters[DEPTH] = depth
            for i in range(hatless_top[depth + 1] - 1, hatless_top[depth] - 1, -1):  # undo the buffers it left hatless
                c = hatless[i]
                offset[c] = SLOW
                for s in range(start[c], end[c]):
                    unplaced_bytes[s] += size[c]
                for k in range(overlap_start[c], overlap_start[c + 1]):
                    open_neighbours[overlaps[k]] += 1
                counters[PLACED] -= 1
            b = chosen[depth]  # undo its placement
            for k in range(overlap_start[b], overlap_start[b + 1]):
                open_neighbours[overlaps[k]] += 1
            counters[PLACED] -= 1
            counters[OVERFLOW] = 0
            t = floor_top[depth]
            for s in range(start[b], end[b]):
                floor[s] = floor_trail[t]
                unplaced_bytes[s] += size[b]
                t += 1
            t = rest_top[depth]
            for k in range(overlap_start[b], overlap_start[b + 1]):
                rest[overlaps[k]] = rest_trail[t]
                t += 1
            offset[b] = SLOW
            continue
        b = children[next_child[depth]]
        next_child[depth] += 1
        alignment = limits[1]
        at = max(last, _resting(rest[b], alignment))
        top = at + size[b]
        offset[b] = at
        chosen[depth] = b
        t = floor_top[depth]
        for s in range(start[b], end[b]):
            floor_trail[t] = floor[s]
            t += 1
            floor[s] = max(floor[s], top)
            unplaced_bytes[s] -= size[b]
        floor_top[depth + 1] = t
        t = rest_top[depth]
        for k in range(overlap_start[b], overlap_start[b + 1]):
            other = overlaps[k]
            rest_trail[t] = rest[other]
            t += 1
            rest[other] = max(rest[other], top)
        rest_top[depth + 1] = t
        counters[PLACED] += 1
        h = placed_hash[depth] ^ zobrist[b]
        # a buffer whose every live-together buffer is placed ("hatless") goes where it rests, outside the order
        i = hatless_top[depth]
        for k in range(overlap_start[b], overlap_start[b + 1]):
            open_neighbours[overlaps[k]] -= 1
        for k in range(overlap_start[b], overlap_start[b + 1]):
            c = overlaps[k]
            if offset[c] == SLOW and open_neighbours[c] == 0:
                offset[c] = _resting(rest[c], alignment)
                if offset[c] + size[c] > limits[0]:
                    counters[OVERFLOW] = 1
                for s in range(start[c], end[c]):
                    unplaced_bytes[s] -= size[c]
                for j in range(overlap_start[c], overlap_start[c + 1]):
                    open_neighbours[overlaps[j]] -= 1
                counters[PLACED] += 1
                h ^= zobrist[c]
                hatless[i] = c
                i += 1
        hatless_top[depth + 1] = i
        placed_hash[depth + 1] = h
        counters[DEPTH] = depth + 1
        counters[ENTERING] = 1
    return BUDGET


def independent_parts(start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
    """The buffers split where no live range crosses a cut in time: lists of buffer ids, earliest part first."""
    order = np.argsort(start, kind="stable")
    parts, current, reach = [], [], -1
    for b in order.tolist():
        if current and start[b] >= reach:
            parts.append(np.array(current, dtype=np.int64))
            current = []
        current.append(b)
        reach = max(reach, int(end[b])) if current[1:] else int(end[b])
    parts.append(np.array(current, dtype=np.int64))
    return parts


def _overlap_lists(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists of the buffers live at the same time as each buffer: (overlap_start ``[n + 1]``, overlaps)."""
    neighbours = live_together(start, end)
    degree = np.array([len(x) for x in neighbours], dtype=np.int64)
    flat = np.array([a for x in neighbours for a in x], dtype=np.int64)
    return np.concatenate(([0], np.cumsum(degree))), flat


def preorders(start: np.ndarray, end: np.ndarray, size: np.ndarray) -> list[np.ndarray]:
    """Static priorities tried side by side, each a rank ``[n]`` (0 first): buffers in the most loaded sections
    first, then larger area (size x lifetime); larger area first; larger size first; longer lifetime first."""
    lifetime = end - start
    load = live_bytes(start, end, size)
    busiest = np.array([load[a:b].max() for a, b in zip(start.tolist(), end.tolist())])
    area = size * lifetime
    orders = [np.lexsort((-area, -busiest)), np.lexsort((-size, -area)), np.lexsort((-lifetime, -size)), np.lexsort((-size, -lifetime))]
    ranks = []
    for order in orders:
        rank = np.empty(len(size), dtype=np.int64)
        rank[order] = np.arange(len(size))
        ranks.append(rank)
    return ranks


def _search_part(start, end, size, capacity, alignment, max_children, deadline) -> tuple[int, np.ndarray, int, bool]:
    """Search one independent part: one search per static priority, resumed in turn with doubling node budgets,
    until one packs it or proves it infeasible or the deadline passes. Returns (outcome, offsets, nodes,
    truncated)."""
    t0 = int(start.min())
    local_start, local_end = start - t0, end - t0
    overlap_start, overlaps = _overlap_lists(local_start, local_end)
    searches = [_Search(local_start, local_end, size, overlap_start, overlaps, capacity, alignment, max_children, rank)
                for rank in preorders(local_start, local_end, size)]
    budget, outcome, winner = FIRST_BUDGET, BUDGET, searches[0]
    while outcome == BUDGET and time.perf_counter() < deadline:
        for search in searches:
            spent = 0
            while spent < budget and time.perf_counter() < deadline:
                outcome = search.run(min(NODES_PER_CALL, budget - spent))
                spent += NODES_PER_CALL
                if outcome != BUDGET:
                    break
            if outcome != BUDGET:
                winner = search
                break
        budget *= 2
    nodes = sum(int(search.counters[NODES]) for search in searches)
    truncated = bool(winner.counters[TRUNCATED])
    return outcome, winner.offset.copy(), nodes, truncated


#: Entries of a search's table of children (n buffers deep, ``max_children`` each): 2^23 int64, 64 MiB.
CHILDREN_ENTRIES = 1 << 23


def pack_buffers(start: np.ndarray, end: np.ndarray, size_bytes: np.ndarray, capacity_bytes: int, *, alignment_bytes: int = 1,
                 time_limit_s: float = 10.0, max_children: int | None = None, minimize_peak: bool = True) -> PackResult:
    """Offsets for buffers live during op ranges ``[start, end)`` (int ``[n]``) of ``size_bytes`` (int ``[n]``),
    pairwise disjoint while live together, every buffer ending at or below ``capacity_bytes``.

    Args:
        alignment_bytes: offsets are multiples of this.
        time_limit_s: wall-clock budget of the whole search.
        max_children: keep at most this many children per node (default: all, a complete search, as long as the
            table of children fits :data:`CHILDREN_ENTRIES`: on programs of more than about 2,900 buffers each node
            keeps its ``CHILDREN_ENTRIES // n`` best, and a failed search is then reported as a timeout, not a proof).
        minimize_peak: once a packing is found, search for lower peaks (down to the peak of live bytes, a lower
            bound) while time is left, and return the lowest found.
    """
    begin = time.perf_counter()
    deadline = begin + time_limit_s
    start, end, size = (np.asarray(a, dtype=np.int64) for a in (start, end, size_bytes))
    if (size > capacity_bytes).any():
        return PackResult(None, "infeasible", 0, time.perf_counter() - begin)
    children = min(len(size), max(1, CHILDREN_ENTRIES // len(size))) if max_children is None else max_children
    parts = independent_parts(start, end)
    lower = int(live_bytes(start, end, size).max())
    best: np.ndarray | None = None
    nodes, truncated, target = 0, False, capacity_bytes
    while True:
        offset = best.copy() if best is not None else np.full(len(size), SLOW, dtype=np.int64)
        outcome = PACKED
        for part in parts:
            if best is not None and (best[part] + size[part]).max() <= target:
                continue  # this part already meets the tighter target
            outcome, local, part_nodes, part_truncated = _search_part(start[part], end[part], size[part], target, alignment_bytes, children, deadline)
            nodes += part_nodes
            truncated |= part_truncated
            if outcome != PACKED:
                break
            offset[part] = local
        if outcome != PACKED:
            break
        best = offset
        peak = int((best + size).max())
        if not minimize_peak or peak <= lower or time.perf_counter() >= deadline:
            break
        target = peak - alignment_bytes
    seconds = time.perf_counter() - begin
    if best is not None:
        return PackResult(best, "packed", nodes, seconds, truncated)
    proved = outcome == INFEASIBLE and not truncated
    return PackResult(None, "infeasible" if proved else "timeout", nodes, seconds, truncated)


@dataclass
class PackSolver:
    """``pack`` as a solver.

    Packing instances: :func:`pack_buffers` at the instance's capacity; if it finds no packing in time, the
    greedy-size packing (above the capacity, so reported invalid) is returned. ``last_result`` keeps what the search
    reported (``status`` "packed", "infeasible" or "timeout").

    Mapping instances (which buffers go fast is the mapping's choice; ``pack`` finds their offsets): buffers are
    chosen in the MSA-like order (benefit / sqrt(size)) while every op's fast bytes stay within the capacity, the
    chosen set is packed, and while it does not pack the lowest-priority eighth of it is given back to slow memory.
    The result is the better (lower modelled runtime) of that and the MSA-like greedy map.

    Attributes: ``default_time_limit_s`` (when the caller gives none).
    """

    name: str = "pack"
    default_time_limit_s: float = 10.0
    last_result: PackResult | None = field(default=None, repr=False)

    def solve(self, instance: MemMapInstance, *, time_limit: float | None = None, seed: int | None = None) -> MemMapSolution:
        limit_s = self.default_time_limit_s if time_limit is None else time_limit
        if instance.packing:
            self.last_result = pack_buffers(instance.live_start, instance.live_end, instance.size_bytes, instance.capacity_bytes,
                                            alignment_bytes=instance.alignment_bytes, time_limit_s=limit_s)
            if self.last_result.offset is None:
                return GreedyPlacer("greedy-size").solve(instance)
            return MemMapSolution(self.last_result.offset)
        deadline = time.perf_counter() + limit_s
        greedy = GreedyPlacer("msa").solve(instance)
        chosen = _fill_sections(instance, buffer_order(instance, "msa"))
        best = greedy
        while len(chosen) and time.perf_counter() < deadline:
            result = pack_buffers(instance.live_start[chosen], instance.live_end[chosen], instance.size_bytes[chosen], instance.capacity_bytes,
                                  alignment_bytes=instance.alignment_bytes, time_limit_s=max(0.0, (deadline - time.perf_counter()) / 2), minimize_peak=False)
            self.last_result = result
            if result.offset is not None:
                offset = np.full(instance.n_buffers, SLOW, dtype=np.int64)
                offset[chosen] = result.offset
                packed = MemMapSolution(offset)
                if objective(instance, packed) < objective(instance, best):
                    best = packed
                break
            chosen = chosen[: len(chosen) - max(1, len(chosen) // 8)]
        return best


def _fill_sections(instance: MemMapInstance, order: np.ndarray) -> np.ndarray:
    """The buffers of ``order`` taken in turn while the bytes live in every op stay within the capacity (a
    necessary condition for a packing), in that order."""
    load = np.zeros(instance.n_ops + 1, dtype=np.int64)
    chosen = []
    for b in order.tolist():
        lo, hi, nbytes = int(instance.live_start[b]), int(instance.live_end[b]), int(instance.size_bytes[b])
        if load[lo:hi].max() + nbytes <= instance.capacity_bytes:
            load[lo:hi] += nbytes
            chosen.append(b)
    return np.array(chosen, dtype=np.int64)
