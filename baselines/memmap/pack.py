"""``pack``: exact search for a packing of buffers within a capacity, over canonical solutions.

The problem: every buffer ``b`` (live during the op range ``[live_start[b], live_end[b])``, ``size_bytes[b]``) gets
an offset so that buffers live at the same time never overlap in offset and every buffer ends at or below the
capacity.

**Canonical solutions.** Sort any packing by offset and drop each buffer, in that order, as low as it goes: onto
the highest earlier buffer it is live with, or to 0. The result is again a packing, and its buffers, in offset
order, each *rest* on a buffer placed before them. So it is enough to search over orders in which offsets never
decrease and every buffer goes where it rests. Buffers at one offset are never live together, so their order does
not matter: they are placed in a fixed rank order (the search's static priority, below).

**Inference** (prunes a node before its children are tried), within the part being searched (below):

* *section*: in some op (a *section*), the lowest offset a buffer still to place there can go to plus the bytes
  still to place there exceeds the capacity;
* *fit*: some buffer still to place no longer fits below the capacity.

The section and fit checks also run when a placement is about to cut a part into pieces, with every buffer of the
part at or above the offset just placed: the pieces are then searched from offset 0, but a packing's canonical order
places the buffers still to place after this one, so at or above it (MiniMalloc's monotone floor, checked before it
decomposes).

**Dominance.** A child is left out when some unplaced buffer, where it rests, ends at or below the child's offset:
nothing placed is in that gap and nothing later goes below the child, so moving that buffer down keeps any completion
a packing, and then it comes first. What remains to decide in a part depends only on its unplaced set, the last
offset and where each of its sections' buffers rest: a failed state is remembered under a 64-bit hash of exactly
that (with the smallest tie rank it failed with) and not searched again.

**Parts come apart during the search** (MiniMalloc's dynamic decomposition, Moffitt, ASPLOS 2023): once no unplaced
buffer is live across some cut between two ops, the buffers on each side no longer interact; each piece is searched
alone, from offset 0, and a piece that fails fails the node without re-searching the pieces packed before it.

**Search.** A depth-first loop over an explicit stack of frames, compiled with numba, run for a node budget.
Children are tried lowest offset first, then by rank. Ranks come from a static priority (:data:`PREORDERS`), taken
again for each piece when it comes apart, with the bytes still unplaced in its sections (as MiniMalloc sorts each
sub-partition). The search is heavy-tailed in the rank order, so several priorities run side by side, restarted in
turn with doubling node budgets (each keeps its failed states between restarts); :func:`pack_buffers` checks the
wall clock between runs.
"""

from __future__ import annotations

import functools
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
        first_packed_s: wall time to the first packing within the capacity (the rest went to lower peaks), or None.
    """

    offset: np.ndarray | None
    status: str
    nodes: int
    seconds: float
    truncated: bool = False
    first_packed_s: float | None = None


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
#: 1 if some node kept only ``max_children`` children, rank-trail top.
NODES, NODE_LIMIT, PLACED, CHILD_TOP, TRUNCATED, RANK_TOP = range(6)
#: the keys a static priority is made of, each descending: T the most loaded section a buffer is live in (bytes still
#: unplaced there), A area (size x lifetime), W lifetime.
PRIORITY_KEYS = "TAW"
#: entries of the rank trail (ranks overwritten when pieces are ranked; a piece found with the trail full keeps the
#: ranks it had).
RANK_TRAIL_ENTRIES = 1 << 21


class _Search:
    """The state of one search with one static priority (numpy arrays the compiled search updates in place).

    Sizes: n buffers, S sections (ops), M overlap entries. ``priority`` (a :data:`PREORDERS` entry) ranks the
    buffers of each piece (``lifetime`` int ``[n]`` for its A and W keys), which orders children at the same offset
    and buffers placed at the same offset. The failed-state table survives between runs, so a restart with a larger
    node budget re-walks only what has not failed yet.
    """

    def __init__(self, start: np.ndarray, end: np.ndarray, size: np.ndarray, overlap_start: np.ndarray, overlaps: np.ndarray,
                 capacity: int, alignment: int, max_children: int, priority: str, lifetime: np.ndarray) -> None:
        n, n_sections = len(size), int(end.max())
        by_start = np.argsort(start, kind="stable").astype(np.int64)
        first_starting = np.searchsorted(start[by_start], np.arange(n_sections + 1)).astype(np.int64)
        zobrist = np.random.default_rng(0).integers(1, 2**63, size=n, dtype=np.int64).astype(np.uint64)
        keys = np.array([PRIORITY_KEYS.index(c) for c in priority], dtype=np.int64)
        self.tables = (start, end, size, keys, overlap_start, overlaps, by_start, first_starting, zobrist,
                       np.array([capacity, alignment, max_children], dtype=np.int64), lifetime)
        self.n, self.n_sections, self.start, self.end = n, n_sections, start, end
        self.children = np.zeros(n * (min(n, max_children) + 1) + 1, dtype=np.int64)  # each node's, then a -1
        self.memo_key = np.zeros(MEMO_SLOTS, dtype=np.uint64)  # failed-state keys (0 = empty)
        self.memo_tie = np.zeros(MEMO_SLOTS, dtype=np.int64)  # smallest tie rank each failed with
        self.counters = np.zeros(6, dtype=np.int64)
        self.rank_trail = np.zeros((2, min(n * (n + 1) // 2, max(n, RANK_TRAIL_ENTRIES))), dtype=np.int64)
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
        self.counters[PLACED] = self.counters[CHILD_TOP] = self.counters[RANK_TOP] = 0
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
            np.arange(n, dtype=np.int64),  # rank of each buffer within its piece
            self.rank_trail,  # (buffer, rank it had) per ranking
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
def _rank_piece(lo, hi, tables, state):
    """Rank the unplaced buffers of piece ``[lo, hi)`` 0, 1, ... by the search's priority keys (T from the bytes
    still unplaced in each section), ties by buffer id; the ranks they had go on the rank trail (taken back by
    :func:`_unrank_to`). Returns the piece's key (the hash of its buffers, which with the priority fixes their
    ranks), or 0 if the trail is full and the ranks were left as they are."""
    start, end, size, keys, by_start, first_starting, zobrist, lifetime = tables[0], tables[1], tables[2], tables[3], tables[6], tables[7], tables[8], tables[10]
    unplaced_bytes, offset, counters, members, key, rank, rank_trail = state[1], state[4], state[13], state[15], state[16], state[17], state[18]
    m, piece_key = 0, np.uint64(0)
    for i in range(first_starting[lo], first_starting[hi]):
        b = by_start[i]
        if offset[b] == SLOW:
            members[m] = b
            piece_key ^= zobrist[b]
            m += 1
    top = counters[RANK_TOP]
    if top + m > rank_trail.shape[1]:
        return np.uint64(0)
    chosen = np.sort(members[:m])
    for j in range(len(keys) - 1, -1, -1):  # stable sorts, least important key first
        for i in range(m):
            b = chosen[i]
            if keys[j] == 0:
                key[i] = -unplaced_bytes[start[b] : end[b]].max()
            elif keys[j] == 1:
                key[i] = -size[b] * lifetime[b]
            else:
                key[i] = -lifetime[b]
        chosen = chosen[np.argsort(key[:m], kind="mergesort")]
    for i in range(m):
        rank_trail[0, top], rank_trail[1, top] = chosen[i], rank[chosen[i]]
        rank[chosen[i]] = i
        top += 1
    counters[RANK_TOP] = top
    return piece_key if piece_key != 0 else np.uint64(1)


@njit(cache=True)
def _unrank_to(mark, state):
    """Give back the ranks overwritten after the rank trail's first ``mark`` entries, latest first."""
    counters, rank, rank_trail = state[13], state[17], state[18]
    for t in range(counters[RANK_TOP] - 1, mark - 1, -1):
        rank[rank_trail[0, t]] = rank_trail[1, t]
    counters[RANK_TOP] = mark


@njit(cache=True)
def _overfull(lo, hi, last, tables, state):
    """True if, with every unplaced buffer of part ``[lo, hi)`` going at or above ``last``, one of them no longer
    fits below the capacity, or in some section the lowest of them plus the bytes still to place there exceeds it."""
    start, end, size, by_start, first_starting, limits = tables[0], tables[1], tables[2], tables[6], tables[7], tables[9]
    unplaced_bytes, rest, offset, lowest = state[1], state[3], state[4], state[14]
    capacity, alignment = limits[0], limits[1]
    lowest[lo:hi] = capacity + 1
    for i in range(first_starting[lo], first_starting[hi]):
        b = by_start[i]
        if offset[b] != SLOW:
            continue
        at = max(last, _resting(rest[b], alignment))
        if at + size[b] > capacity:
            return True
        for s in range(start[b], end[b]):
            lowest[s] = min(lowest[s], at)
    for s in range(lo, hi):
        if unplaced_bytes[s] > 0 and lowest[s] + unplaced_bytes[s] > capacity:
            return True
    return False


#: what :func:`_expand` found at a node besides its children.
DEAD, COMPLETE = -1, -2
#: frame kinds of :func:`_search`'s stack: a node (one placement per child), or a part to cut into pieces.
NODE, SPLIT = 0, 1
#: rows of the frame stack: kind, part ``[lo, hi)``, last offset, tie rank, next child (or next section to cut at),
#: placements before the frame's own (a split: the rank-trail top before its pieces were ranked), first child.
FRAME_FIELDS = 8


@njit(cache=True)
def _expand(lo, hi, last, tie, piece_key, tables, state):
    """Inference at the node of part ``[lo, hi)`` (no unplaced buffer crosses ``lo`` or ``hi``; its piece, with
    ranks fixed by ``piece_key``) where the last buffer went to offset ``last`` with rank ``tie``; its children, in
    the order to try them (lowest offset, then rank), go to the children table from its top. Returns (their number,
    or ``DEAD`` or ``COMPLETE`` if nothing is left to place; the node's state hash)."""
    size, by_start, first_starting, zobrist, limits = tables[2], tables[6], tables[7], tables[8], tables[9]
    floor, unplaced_bytes, _, rest, offset = state[:5]
    children, memo_key, memo_tie, counters, _, sort_key, _, rank = state[10:18]
    capacity, alignment, max_children = limits[0], limits[1], limits[2]
    n, n_sections = len(size), len(floor)
    base = counters[CHILD_TOP]
    min_top, count, unplaced = capacity + 1, 0, np.uint64(0)
    for i in range(first_starting[lo], first_starting[hi]):  # the unplaced buffers of the part start in [lo, hi)
        b = by_start[i]
        if offset[b] != SLOW:
            continue
        unplaced ^= zobrist[b]
        resting = _resting(rest[b], alignment)
        min_top = min(min_top, resting + size[b])
        if resting >= last and not (resting == last and rank[b] < tie):
            children[base + count] = b  # not floating above what it rests on, nor after a higher rank at one offset
            count += 1
    if unplaced == 0:
        return COMPLETE, np.uint64(0)
    if _overfull(lo, hi, last, tables, state):
        return DEAD, np.uint64(0)
    # what the rest of this part depends on: its unplaced set, the last offset, where each section's buffers rest and
    # the ranks (the piece's key)
    h = _mix(_mix(_mix(unplaced, last), lo * n_sections + hi), piece_key)
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
            sort_key[kept] = at * n + rank[b]
            kept += 1
    order = np.argsort(sort_key[:kept])
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
    start, end, alignment = tables[0], tables[1], tables[9][1]
    unplaced_bytes, cuts, rest = state[1], state[2], state[3]
    children, memo_key, memo_tie, counters, rank = state[10], state[11], state[12], state[13], state[17]
    kind, lo, hi, last, tie, cursor, mark, first = frames
    node_hash = np.zeros(frames.shape[1], dtype=np.uint64)
    piece_key = np.zeros(frames.shape[1], dtype=np.uint64)  # of the piece each frame is in
    kind[0], lo[0], hi[0], cursor[0] = SPLIT, 0, len(unplaced_bytes), 0
    depth, entering, outcome = 1, True, PACKED
    while depth > 0:
        f = depth - 1
        if kind[f] == SPLIT:
            if entering:
                mark[f] = counters[RANK_TOP]
            else:
                _unrank_to(mark[f], state)
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
            piece_key[depth] = _rank_piece(piece, s + 1, tables, state)
            if piece_key[depth] == 0:
                piece_key[depth] = piece_key[f]
            depth, entering = depth + 1, True
            continue
        if entering:
            counters[NODES] += 1
            if counters[NODES] > counters[NODE_LIMIT]:
                return BUDGET
            count, h = _expand(lo[f], hi[f], last[f], tie[f], piece_key[f], tables, state)
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
        if cut and _overfull(lo[f], hi[f], at, tables, state):
            entering, outcome = False, INFEASIBLE  # the part fails before it comes apart: try the next child
            continue
        kind[depth], lo[depth], hi[depth], last[depth], tie[depth] = SPLIT if cut else NODE, lo[f], hi[f], at, rank[b]
        piece_key[depth] = piece_key[f]
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


#: the static priorities tried side by side, each a string of :data:`PRIORITY_KEYS` letters, most important first:
#: MiniMalloc's three (Moffitt, ASPLOS 2023), the one that packs most of its benchmark first.
PREORDERS = ("TWA", "TAW", "WAT")


def _search_part(start, end, size, lifetime, capacity, alignment, max_children, deadline) -> tuple[int, np.ndarray, int, bool]:
    """Search one independent part: one search per static priority, restarted in turn with doubling node budgets
    (each keeping its failed states), until one packs it or proves it infeasible or the deadline passes. A budget is
    cut to the nodes the time left allows at the rate that search has run at so far. Returns (outcome, offsets, nodes,
    truncated)."""
    t0 = int(start.min())
    local_start, local_end = start - t0, end - t0
    overlap_start, overlaps = _overlap_lists(local_start, local_end)
    searches = [_Search(local_start, local_end, size, overlap_start, overlaps, capacity, alignment, max_children, priority, lifetime)
                for priority in PREORDERS]
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


@functools.cache
def _compile() -> None:
    """Compile (or load from numba's cache) the search once per process, so that no time limit pays for it."""
    overlap_start, overlaps = _overlap_lists(np.array([0, 1]), np.array([2, 3]))
    _Search(np.array([0, 1]), np.array([2, 3]), np.array([4, 4]), overlap_start, overlaps, 8, 1, 2, PREORDERS[0], np.array([2, 2])).run(FIRST_BUDGET)


def pack_buffers(start: np.ndarray, end: np.ndarray, size_bytes: np.ndarray, capacity_bytes: int, *, alignment_bytes: int = 1,
                 time_limit_s: float = 10.0, max_children: int | None = None, minimize_peak: bool = True,
                 lifetime: np.ndarray | None = None) -> PackResult:
    """Offsets for buffers live during op ranges ``[start, end)`` (int ``[n]``) of ``size_bytes`` (int ``[n]``),
    pairwise disjoint while live together, every buffer ending at or below ``capacity_bytes``.

    Args:
        alignment_bytes: offsets are multiples of this.
        time_limit_s: wall-clock budget of the whole search (the search is compiled, or loaded from numba's cache, once
            per process before the clock starts).
        max_children: keep at most this many children per node (default: all, a complete search, as long as the
            table of children fits :data:`CHILDREN_ENTRIES`: on programs of more than about 2,900 buffers each node
            keeps its ``CHILDREN_ENTRIES // n`` best, and a failed search is then reported as a timeout, not a proof).
        minimize_peak: once a packing is found, search for lower peaks (down to the peak of live bytes, a lower
            bound) while time is left, and return the lowest found.
        lifetime: int ``[n]``, how long each buffer is live in the source's own time units (the W and A keys of
            the priorities); default ``end - start`` in ops.
    """
    _compile()
    begin = time.perf_counter()
    deadline = begin + time_limit_s
    start, end, size = (np.asarray(a, dtype=np.int64) for a in (start, end, size_bytes))
    if (size <= 0).any() or (end <= start).any() or (start < 0).any():
        raise ValueError("pack_buffers needs sizes > 0 and live ranges with 0 <= start < end; drop empty buffers first")
    lifetime = end - start if lifetime is None else np.asarray(lifetime, dtype=np.int64)
    if lifetime.shape != size.shape or (lifetime <= 0).any():
        raise ValueError(f"pack_buffers needs a lifetime > 0 per buffer ({len(size)}), got shape {lifetime.shape}")
    if (size > capacity_bytes).any():
        return PackResult(None, "infeasible", 0, time.perf_counter() - begin)
    children = min(len(size), max(1, CHILDREN_ENTRIES // len(size))) if max_children is None else max_children
    parts = independent_parts(start, end)
    lower = int(live_bytes(start, end, size).max())
    best: np.ndarray | None = None
    nodes, truncated, target, first_packed_s = 0, False, capacity_bytes, None
    while True:
        offset = best.copy() if best is not None else np.full(len(size), SLOW, dtype=np.int64)
        outcome = PACKED
        for part in parts:
            if best is not None and (best[part] + size[part]).max() <= target:
                continue  # this part already meets the tighter target
            outcome, local, part_nodes, part_truncated = _search_part(start[part], end[part], size[part], lifetime[part], target, alignment_bytes, children, deadline)
            nodes += part_nodes
            truncated |= part_truncated
            if outcome != PACKED:
                break
            offset[part] = local
        if outcome != PACKED:
            break
        best = offset
        first_packed_s = time.perf_counter() - begin if first_packed_s is None else first_packed_s
        peak = int((best + size).max())
        if not minimize_peak or peak <= lower or time.perf_counter() >= deadline:
            break
        target = peak - alignment_bytes
    seconds = time.perf_counter() - begin
    if best is not None:
        return PackResult(best, "packed", nodes, seconds, truncated, first_packed_s)
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
                                            alignment_bytes=instance.alignment_bytes, time_limit_s=limit_s, lifetime=instance.live_time())
            if self.last_result.offset is None:
                return GreedyPlacer("greedy-size").solve(instance)
            return MemMapSolution(self.last_result.offset)
        deadline = time.perf_counter() + limit_s
        greedy = GreedyPlacer("msa").solve(instance)
        chosen = _fill_sections(instance, buffer_order(instance, "msa"))
        best = greedy
        while len(chosen) and time.perf_counter() < deadline:
            result = pack_buffers(instance.live_start[chosen], instance.live_end[chosen], instance.size_bytes[chosen], instance.capacity_bytes,
                                  alignment_bytes=instance.alignment_bytes, time_limit_s=max(0.0, (deadline - time.perf_counter()) / 2), minimize_peak=False,
                                  lifetime=instance.live_time()[chosen])
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
