"""``pack``: exact search for a packing of buffers within a capacity, over canonical solutions.

The problem: every buffer ``b`` (live during the op range ``[live_start[b], live_end[b])``, ``size_bytes[b]``) gets
an offset so that buffers live at the same time never overlap in offset and every buffer ends at or below the
capacity.

**Canonical solutions.** Sort any packing by offset and drop each buffer, in that order, as low as it goes: onto
the highest earlier buffer it is live with, or to 0. The result is again a packing, and its buffers, in offset
order, each *rest* on a buffer placed before them. So it is enough to search over orders in which offsets never
decrease and every buffer goes where it rests. Buffers at one offset are never live together, so their order does
not matter: they are placed in a fixed rank order.

**Inference** (prunes a node before its children are tried), within the part being searched (below):

* *stack*: the buffers still to place that are live in an op (a *section*) are stacked in it, each from the lowest
  offset it can start at: if for some r, r + the bytes of those starting at r or above exceeds the capacity, no
  completion exists (a one-machine schedule with release dates);
* *fit*: some buffer still to place no longer fits below the capacity.

**Dominance.** A child is left out when some unplaced buffer, where it rests, ends at or below the child's offset:
nothing placed is in that gap and nothing later goes below the child, so moving that buffer down keeps any completion
a packing, and then it comes first. What remains to decide in a part depends only on its unplaced set, the last
offset and where each of its sections' buffers rest: a failed state is remembered under a 64-bit hash of exactly
that (with the smallest tie rank it failed with) and not searched again.

**Parts come apart during the search** (MiniMalloc's dynamic decomposition, Moffitt, ASPLOS 2023): once no unplaced
buffer is live across some cut between two ops, the buffers on each side no longer interact; each piece is searched
alone, from offset 0, and a piece that fails fails the node without re-searching the pieces packed before it.

**Search.** A depth-first loop over an explicit stack of frames, compiled with numba, run for a node budget.
Children are tried lowest offset first, then by rank. The search is heavy-tailed in the rank order, so several
static orders (:data:`PREORDERS`) run side by side, restarted in turn with doubling node budgets (each keeps its
failed states between restarts); :func:`pack_buffers` checks the wall clock between runs.
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


#: ``_Search.counters`` fields: nodes visited, node count at which the current run stops, buffers placed, children-table top,
#: 1 if some node kept only ``max_children`` children.
NODES, NODE_LIMIT, PLACED, CHILD_TOP, TRUNCATED = range(5)


class _Search:
    """The state of one search with one static priority (numpy arrays the compiled search updates in place).

    Sizes: n buffers, S sections (ops), M overlap entries. ``rank`` int ``[n]`` (a :func:`preorders` entry) orders
    children at the same offset and buffers placed at the same offset. The failed-state table survives between runs,
    so a restart with a larger node budget re-walks only what has not failed yet.
    """

    def __init__(self, start: np.ndarray, end: np.ndarray, size: np.ndarray, overlap_start: np.ndarray, overlaps: np.ndarray,
                 capacity: int, alignment: int, max_children: int, rank: np.ndarray) -> None:
        n, n_sections = len(size), int(end.max())
        by_section = [np.arange(n)[(start <= t) & (end > t)] for t in range(n_sections)]
        section_start = np.concatenate(([0], np.cumsum([len(x) for x in by_section]))).astype(np.int64)
        section_buffers = np.concatenate(by_section).astype(np.int64)
        by_start = np.argsort(start, kind="stable").astype(np.int64)
        first_starting = np.searchsorted(start[by_start], np.arange(n_sections + 1)).astype(np.int64)
        zobrist = np.random.default_rng(0).integers(1, 2**63, size=n, dtype=np.int64).astype(np.uint64)
        self.tables = (start, end, size, rank, overlap_start, overlaps, section_start, section_buffers, by_start, first_starting, zobrist,
                       np.array([capacity, alignment, max_children], dtype=np.int64))
        self.n, self.n_sections, self.start, self.end = n, n_sections, start, end
        self.children = np.zeros(n * (min(n, max_children) + 1) + 1, dtype=np.int64)  # each node's, then a -1
        self.memo_key = np.zeros(MEMO_SLOTS, dtype=np.uint64)  # failed-state keys (0 = empty)
        self.memo_tie = np.zeros(MEMO_SLOTS, dtype=np.int64)  # smallest tie rank each failed with
        self.counters = np.zeros(5, dtype=np.int64)
        self.offset = np.full(n, SLOW, dtype=np.int64)
        # before any placement: the bytes live in each section, and the buffers live across each cut s | s + 1
        self.all_bytes = live_bytes(start, end, size)[:n_sections].astype(np.int64)
        self.all_across = np.cumsum(np.bincount(start, minlength=n_sections + 1)[:n_sections]
                                    - np.bincount(end - 1, minlength=n_sections + 1)[:n_sections]).astype(np.int64)

    def run(self, node_budget: int) -> int:
        """Search from scratch for up to ``node_budget`` more nodes; returns ``PACKED``, ``INFEASIBLE`` or ``BUDGET``."""
        n, n_sections = self.n, self.n_sections
        self.offset[:] = SLOW
        self.counters[NODE_LIMIT] = self.counters[NODES] + node_budget
        self.counters[PLACED] = self.counters[CHILD_TOP] = 0
        state = (
            np.zeros(n_sections, dtype=np.int64),  # floor: highest top placed in each section
            self.all_bytes.copy(),  # unplaced_bytes: bytes still to place in each section
            self.all_across.copy(),  # cuts: unplaced buffers live in both section s and s + 1
            np.zeros(n, dtype=np.int64),  # rest: highest top of the placed buffers live with each buffer
            self.offset,
            np.zeros(int((self.end - self.start).sum()) + 1, dtype=np.int64),  # trail of overwritten floors
            np.zeros(len(self.tables[5]) + 1, dtype=np.int64),  # trail of overwritten rests
            np.zeros(n + 1, dtype=np.int64),  # placed buffers, in order
            np.zeros(n + 1, dtype=np.int64),  # floor trail top per placement
            np.zeros(n + 1, dtype=np.int64),  # rest trail top per placement
            self.children, self.memo_key, self.memo_tie, self.counters,
            np.empty(n_sections, dtype=np.int64), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),  # scratch
        )
        return _search(self.tables, state, np.zeros((FRAME_FIELDS, 2 * n + 2), dtype=np.int64))


@njit(cache=True)
def _place(b, at, tables, state):
    """Put buffer ``b`` at offset ``at``; what it overwrites goes on the trails (undone by :func:`_undo_to`)."""
    start, end, size, _, overlap_start, overlaps = tables[0], tables[1], tables[2], tables[3], tables[4], tables[5]
    floor, unplaced_bytes, cuts, rest, offset, floor_trail, rest_trail, placed, floor_mark, rest_mark = state[:10]
    counters = state[13]
    k = counters[PLACED]
    top = at + size[b]
    offset[b] = at
    placed[k] = b
    t = floor_mark[k]
    for s in range(start[b], end[b]):
        floor_trail[t] = floor[s]
        t += 1
        floor[s] = max(floor[s], top)
        unplaced_bytes[s] -= size[b]
    for s in range(start[b], end[b] - 1):
        cuts[s] -= 1
    floor_mark[k + 1] = t
    t = rest_mark[k]
    for j in range(overlap_start[b], overlap_start[b + 1]):
        rest_trail[t] = rest[overlaps[j]]
        t += 1
        rest[overlaps[j]] = max(rest[overlaps[j]], top)
    rest_mark[k + 1] = t
    counters[PLACED] = k + 1


@njit(cache=True)
def _undo_to(mark, tables, state):
    """Take back the placements after the first ``mark`` ones, latest first."""
    start, end, size, _, overlap_start, overlaps = tables[0], tables[1], tables[2], tables[3], tables[4], tables[5]
    floor, unplaced_bytes, cuts, rest, offset, floor_trail, rest_trail, placed, floor_mark, rest_mark = state[:10]
    counters = state[13]
    while counters[PLACED] > mark:
        k = counters[PLACED] - 1
        b = placed[k]
        t = floor_mark[k]
        for s in range(start[b], end[b]):
            floor[s] = floor_trail[t]
            t += 1
            unplaced_bytes[s] += size[b]
        for s in range(start[b], end[b] - 1):
            cuts[s] += 1
        t = rest_mark[k]
        for j in range(overlap_start[b], overlap_start[b + 1]):
            rest[overlaps[j]] = rest_trail[t]
            t += 1
        offset[b] = SLOW
        counters[PLACED] = k


@njit(cache=True)
def _stack_too_high(lo, hi, section_start, section_buffers, size, offset, rest, last, alignment, capacity, stack_at, stack_size):
    """True if in some section of ``[lo, hi)`` the unplaced buffers live there cannot all be stacked below the
    capacity, each at or above the lowest offset it can start at (a one-machine schedule with release dates: the top
    is at least ``r + the bytes of the buffers that start at r or above``, for every r)."""
    for s in range(lo, hi):
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


#: what :func:`_expand` found at a node besides its children.
DEAD, COMPLETE = -1, -2
#: frame kinds of :func:`_search`'s stack: a node (one placement per child), or a part to cut into pieces.
NODE, SPLIT = 0, 1
#: rows of the frame stack: kind, part ``[lo, hi)``, last offset, tie rank, next child (or next section to cut at),
#: placements before the frame's own, first child.
FRAME_FIELDS = 8


@njit(cache=True)
def _expand(lo, hi, last, tie, tables, state):
    """Inference at the node of part ``[lo, hi)`` (no unplaced buffer crosses ``lo`` or ``hi``) where the last
    buffer went to offset ``last`` with rank ``tie``; its children, in the order to try them (lowest offset, then
    rank), go to the children table from its top. Returns (their number, or ``DEAD`` or ``COMPLETE`` if nothing is
    left to place; the node's state hash)."""
    start, end, size, rank, _, _, section_start, section_buffers, by_start, first_starting, zobrist, limits = tables
    floor, unplaced_bytes, _, rest, offset = state[:5]
    children, memo_key, memo_tie, counters, lowest, stack_at, stack_size = state[10:]
    capacity, alignment, max_children = limits[0], limits[1], limits[2]
    n, n_sections = len(size), len(floor)
    base = counters[CHILD_TOP]
    lowest[lo:hi] = capacity + 1
    min_top, count, unplaced = capacity + 1, 0, np.uint64(0)
    for i in range(first_starting[lo], first_starting[hi]):  # the unplaced buffers of the part start in [lo, hi)
        b = by_start[i]
        if offset[b] != SLOW:
            continue
        unplaced ^= zobrist[b]
        resting = _resting(rest[b], alignment)
        at = max(last, resting)
        if at + size[b] > capacity:
            return DEAD, np.uint64(0)
        min_top = min(min_top, resting + size[b])
        for s in range(start[b], end[b]):
            lowest[s] = min(lowest[s], at)
        if at == resting and not (at == last and rank[b] < tie):
            children[base + count] = b  # not floating above what it rests on, nor after a higher rank at one offset
            count += 1
    if unplaced == 0:
        return COMPLETE, np.uint64(0)
    for s in range(lo, hi):
        if unplaced_bytes[s] > 0 and lowest[s] + unplaced_bytes[s] > capacity:
            return DEAD, np.uint64(0)
    if _stack_too_high(lo, hi, section_start, section_buffers, size, offset, rest, last, alignment, capacity, stack_at, stack_size):
        return DEAD, np.uint64(0)
    # what the rest of this part depends on: its unplaced set, the last offset and where each section's buffers rest
    h = _mix(_mix(unplaced, last), lo * n_sections + hi)
    for s in range(lo, hi):
        if unplaced_bytes[s] > 0:
            level = _resting(floor[s], alignment)
            h = _mix(h, (level + 1 if level >= last else 0) * n_sections + s)
    h = h if h != 0 else np.uint64(1)
    slot = _memo_slot(memo_key, h)
    if slot >= 0 and memo_key[slot] == h and tie >= memo_tie[slot]:
        return DEAD, h
    # dominance: a child at or above the top of some unplaced buffer where it rests leaves a gap that buffer fits in
    # (nothing placed is there, and nothing later goes below the child)
    kept = 0
    for i in range(count):
        b = children[base + i]
        at = max(last, _resting(rest[b], alignment))
        if at < min_top:
            children[base + kept] = b
            stack_at[kept] = at * n + rank[b]
            kept += 1
    order = np.argsort(stack_at[:kept])
    chosen = children[base : base + kept][order]
    if kept > max_children:
        kept = max_children
        counters[TRUNCATED] = 1
    children[base : base + kept] = chosen[:kept]
    return kept, h


@njit(cache=True)
def _search(tables, state, frames):
    """The depth-first search over the whole problem, on an explicit stack of frames (``frames`` int
    ``[FRAME_FIELDS, depth]``).

    A ``SPLIT`` frame cuts its part where no unplaced buffer crosses and searches the pieces one after another, each
    from offset 0: a piece that fails fails the frame, and the pieces packed before it are not searched again. A
    ``NODE`` frame tries its children in turn; its children sit in the children table from ``first`` up to a -1.
    Returns ``PACKED`` (the placements stay), ``INFEASIBLE`` or ``BUDGET``."""
    start, end, rank, alignment = tables[0], tables[1], tables[3], tables[11][1]
    unplaced_bytes, cuts, rest = state[1], state[2], state[3]
    children, memo_key, memo_tie, counters = state[10], state[11], state[12], state[13]
    kind, lo, hi, last, tie, cursor, mark, first = frames
    node_hash = np.zeros(frames.shape[1], dtype=np.uint64)
    kind[0], lo[0], hi[0], cursor[0] = SPLIT, 0, len(unplaced_bytes), 0
    depth, entering, outcome = 1, True, PACKED
    while depth > 0:
        f = depth - 1
        if kind[f] == SPLIT:
            if not entering and outcome != PACKED:
                depth -= 1  # a piece failed, and so does the part
                continue
            piece = cursor[f] if not entering else lo[f]
            while piece < hi[f] and unplaced_bytes[piece] == 0:
                piece += 1
            if piece == hi[f]:
                depth, entering, outcome = depth - 1, False, PACKED
                continue
            s = piece
            while s < hi[f] - 1 and cuts[s] > 0:
                s += 1
            cursor[f] = s + 1
            kind[depth], lo[depth], hi[depth], last[depth], tie[depth] = NODE, piece, s + 1, 0, -1
            depth, entering = depth + 1, True
            continue
        if entering:
            counters[NODES] += 1
            if counters[NODES] > counters[NODE_LIMIT]:
                return BUDGET
            count, h = _expand(lo[f], hi[f], last[f], tie[f], tables, state)
            if count < 0:
                depth, entering, outcome = depth - 1, False, PACKED if count == COMPLETE else INFEASIBLE
                continue
            node_hash[f], first[f], cursor[f], mark[f] = h, counters[CHILD_TOP], counters[CHILD_TOP], counters[PLACED]
            children[first[f] + count] = -1
            counters[CHILD_TOP] = first[f] + count + 1
        elif outcome == PACKED:
            counters[CHILD_TOP] = first[f]
            depth -= 1
            continue
        else:
            _undo_to(mark[f], tables, state)
        b = children[cursor[f]]
        if b == -1:  # every child failed: remember the state
            counters[CHILD_TOP] = first[f]
            h = node_hash[f]
            slot = _memo_slot(memo_key, h)
            if slot >= 0 and (memo_key[slot] != h or tie[f] < memo_tie[slot]):
                memo_key[slot] = h
                memo_tie[slot] = tie[f]
            depth, entering, outcome = depth - 1, False, INFEASIBLE
            continue
        cursor[f] += 1
        at = max(last[f], _resting(rest[b], alignment))
        _place(b, at, tables, state)
        cut = False
        for s in range(start[b], end[b] - 1):
            cut |= cuts[s] == 0
        kind[depth], lo[depth], hi[depth], last[depth], tie[depth] = SPLIT if cut else NODE, lo[f], hi[f], at, rank[b]
        depth, entering = depth + 1, True
    return outcome


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


#: the static priorities, most important key first, each key descending: T the most loaded section a buffer is live
#: in (bytes), A area (size x lifetime), W lifetime, Z size. The first three are MiniMalloc's (Moffitt, ASPLOS 2023).
PREORDERS = ("TAW", "TWA", "WAT", "AZ", "ZW")


def preorders(start: np.ndarray, end: np.ndarray, size: np.ndarray) -> list[np.ndarray]:
    """Static priorities tried side by side (:data:`PREORDERS`), each a rank ``[n]`` (0 first)."""
    lifetime = end - start
    load = live_bytes(start, end, size)
    busiest = np.array([load[a:b].max() for a, b in zip(start.tolist(), end.tolist())])
    area = size * lifetime
    keys = {"T": -busiest, "A": -area, "W": -lifetime, "Z": -size}
    orders = [np.lexsort(tuple(keys[c] for c in reversed(name))) for name in PREORDERS]
    ranks = []
    for order in orders:
        rank = np.empty(len(size), dtype=np.int64)
        rank[order] = np.arange(len(size))
        ranks.append(rank)
    return ranks


def _search_part(start, end, size, capacity, alignment, max_children, deadline) -> tuple[int, np.ndarray, int, bool]:
    """Search one independent part: one search per static priority, restarted in turn with doubling node budgets
    (each keeping its failed states), until one packs it or proves it infeasible or the deadline passes. A budget is
    cut to the nodes the time left allows at the rate that search has run at so far. Returns (outcome, offsets, nodes,
    truncated)."""
    t0 = int(start.min())
    local_start, local_end = start - t0, end - t0
    overlap_start, overlaps = _overlap_lists(local_start, local_end)
    searches = [_Search(local_start, local_end, size, overlap_start, overlaps, capacity, alignment, max_children, rank)
                for rank in preorders(local_start, local_end, size)]
    budget, outcome, winner = FIRST_BUDGET, BUDGET, searches[0]
    seconds = [0.0] * len(searches)
    while outcome == BUDGET and time.perf_counter() < deadline:
        for i, search in enumerate(searches):
            left_s = deadline - time.perf_counter()
            if left_s <= 0:
                break
            nodes_per_s = search.counters[NODES] / seconds[i] if seconds[i] > 0 else 0.0
            allowed = budget if nodes_per_s == 0 else int(min(budget, max(FIRST_BUDGET, nodes_per_s * left_s)))
            begin = time.perf_counter()
            outcome = search.run(allowed)
            seconds[i] += time.perf_counter() - begin
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
    if (size <= 0).any() or (end <= start).any() or (start < 0).any():
        raise ValueError("pack_buffers needs sizes > 0 and live ranges with 0 <= start < end; drop empty buffers first")
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
