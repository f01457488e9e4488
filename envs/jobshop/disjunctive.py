"""A complete job-shop schedule as its disjunctive graph: heads, tails, critical moves, incremental re-evaluation.

The schedule is held as its machine sequences (``machine_pred`` / ``machine_succ`` linked lists over the flat
operation ids ``job * n_ops + op``); its semi-active start times are the heads of the graph. Terms:

* **head** ``r[v]``: the longest path from the start to ``v``'s start (its earliest start);
* **tail** ``q[v]``: the longest path from ``v``'s end to the end of the schedule;
* ``v`` is **critical** when ``r[v] + d[v] + q[v]`` equals the makespan, and a machine arc ``u -> v`` is critical
  when both ends are and ``r[u] + d[u] = r[v]``; a **block** is a maximal chain of critical machine arcs;
* the **N5 moves** (Nowicki and Smutnicki, 1996) swap the first two or the last two operations of a block, except
  the first two of a block that starts the schedule (``r = 0``) and the last two of one that ends it (``q = 0``).
  Here the blocks of every critical path are used, so the move set is a function of the schedule alone;
* the **N7 moves** (Zhang et al., 2007; an option of the improvement env), four kinds per operation ``v`` of a
  block ``f .. l``: ``v`` to the front (right before ``f``), ``v`` to the back (right after ``l``), and, for ``v``
  inside the block, ``f`` to right after ``v`` and ``l`` to right before ``v``. They hold the N5 moves. A move is
  offered only where the conditions of Balas and Vazacopoulos (1998) guarantee that it closes no cycle: moving
  ``u`` forward to right after ``w`` needs ``d[w] + q[w] >= d[js(u)] + q[js(u)]`` (``js`` the job successor), moving
  ``w`` backward to right before ``u`` needs ``r[u] + d[u] >= r[jp(w)] + d[jp(w)]``. An N7 move is re-evaluated from
  scratch.

A swap is evaluated incrementally (:func:`swap_in_place`): the topological order is repaired locally (Pearce and
Kelly, 2006: only the nodes ranked between the two swapped operations can move), then heads are propagated
forward and tails backward from the swapped pair, visiting only nodes whose predecessors (successors) changed,
and stopping as soon as no change is pending. :meth:`DisjunctiveSchedule.reevaluate` recomputes everything from
scratch (Kahn's algorithm); ``benchmarks/jobshop_improve_speed.py`` measures both.

Everything hot is compiled with numba (the package's other event kernels are too): a move costs a few
microseconds on a 15x15 instance instead of the milliseconds a Python pass over the graph takes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.resource_order import tasks_by_resource


@njit(cache=True)
def _job_pred(v: int, n_ops: int) -> int:
    return v - 1 if v % n_ops else -1


@njit(cache=True)
def _job_succ(v: int, n_ops: int) -> int:
    return v + 1 if (v + 1) % n_ops else -1


@njit(cache=True)
def _makespan(duration, n_ops, head) -> int:
    """The latest end among the jobs' last operations (every operation precedes its job's last one)."""
    makespan = 0
    for last in range(n_ops - 1, len(duration), n_ops):
        makespan = max(makespan, head[last] + duration[last])
    return makespan


@njit(cache=True)
def evaluate_full(duration, n_ops, machine_pred, machine_succ, head, tail, order, rank) -> int:
    """Heads, tails and a topological order (``order[rank[v]] == v``) of the whole graph, written in place;
    returns the makespan, or -1 if the machine sequences make a cycle (the arrays are then garbage)."""
    n = len(duration)
    indegree = np.zeros(n, dtype=np.int64)
    for v in range(n):
        indegree[v] = (_job_pred(v, n_ops) >= 0) + (machine_pred[v] >= 0)
    size = 0
    for v in range(n):
        if indegree[v] == 0:
            order[size] = v
            size += 1
    k = 0
    while k < size:  # Kahn's queue: order[k:size]
        v = order[k]
        k += 1
        for w in (_job_succ(v, n_ops), machine_succ[v]):
            if w >= 0:
                indegree[w] -= 1
                if indegree[w] == 0:
                    order[size] = w
                    size += 1
    if size < n:
        return -1
    for k in range(n):
        v = order[k]
        rank[v] = k
        a, b = _job_pred(v, n_ops), machine_pred[v]
        head[v] = max(head[a] + duration[a] if a >= 0 else 0, head[b] + duration[b] if b >= 0 else 0)
    for k in range(n - 1, -1, -1):
        v = order[k]
        a, b = _job_succ(v, n_ops), machine_succ[v]
        tail[v] = max(tail[a] + duration[a] if a >= 0 else 0, tail[b] + duration[b] if b >= 0 else 0)
    return _makespan(duration, n_ops, head)


@njit(cache=True)
def _relink(u, v, machine_pred, machine_succ) -> None:
    """Machine order ``a, u, v, b`` -> ``a, v, u, b``."""
    a, b = machine_pred[u], machine_succ[v]
    machine_pred[v], machine_succ[v] = a, u
    machine_pred[u], machine_succ[u] = v, b
    if a >= 0:
        machine_succ[a] = v
    if b >= 0:
        machine_pred[b] = u


@njit(cache=True)
def _region(start, forward, bound, stop_at, n_ops, machine_next, rank, mark, epoch, stack, region) -> int:
    """The nodes reached from ``start`` (into ``region``; their count returned) following successors
    (``forward``: job successor and ``machine_next`` = machine_succ, visiting nodes ranked below ``bound``) or
    predecessors (job predecessor and ``machine_next`` = machine_pred, nodes ranked above ``bound``); -1 as soon
    as ``stop_at`` is reached."""
    size, top = 0, 0
    stack[top] = start
    top += 1
    mark[start] = epoch
    while top > 0:
        top -= 1
        w = stack[top]
        region[size] = w
        size += 1
        job_next = _job_succ(w, n_ops) if forward else _job_pred(w, n_ops)
        for s in (job_next, machine_next[w]):
            if s < 0 or mark[s] == epoch:
                continue
            if s == stop_at:
                return -1
            if (rank[s] < bound) if forward else (rank[s] > bound):
                mark[s] = epoch
                stack[top] = s
                top += 1
    return size


@njit(cache=True)
def _forward_region(u, v, n_ops, machine_succ, rank, mark, epoch, stack, region) -> int:
    """After the relink: the nodes reachable from ``u`` ranked before ``v``, or -1 if ``v`` itself is reachable
    (the swap closed a cycle)."""
    return _region(u, True, rank[v], v, n_ops, machine_succ, rank, mark, epoch, stack, region)


@njit(cache=True)
def _backward_region(u, v, n_ops, machine_pred, rank, mark, epoch, stack, region) -> int:
    """After the relink: the nodes that reach ``v`` ranked after ``u``."""
    return _region(v, False, rank[u], -1, n_ops, machine_pred, rank, mark, epoch, stack, region)


@njit(cache=True)
def _sort_by_rank(nodes, size, rank) -> None:
    """Insertion sort of ``nodes[:size]`` by ``rank`` (the regions a swap reorders hold a few nodes)."""
    for k in range(1, size):
        w = nodes[k]
        key = rank[w]
        i = k - 1
        while i >= 0 and rank[nodes[i]] > key:
            nodes[i + 1] = nodes[i]
            i -= 1
        nodes[i + 1] = w


@njit(cache=True)
def swap_in_place(u, duration, n_ops, machine_pred, machine_succ, head, tail, order, rank, mark, epoch, stack, forward, backward) -> int:
    """Swap operation ``u`` with its machine successor and re-evaluate incrementally; returns the new makespan, or
    -1 (nothing changed) if the swap would close a cycle.

    ``mark`` int64 ``[n]`` holds visit stamps (``epoch`` int64 ``[1]`` is the last stamp used); ``stack``,
    ``forward``, ``backward`` int64 ``[n]`` are scratch.
    """
    v = machine_succ[u]
    a, b = machine_pred[u], machine_succ[v]
    _relink(u, v, machine_pred, machine_succ)
    # 1. repair the topological order (Pearce-Kelly): the new arc v -> u breaks it only between their ranks, so
    # the ancestors of v ranked after u go first, then the descendants of u ranked before v, each group in its
    # old relative order, into the ranks the two groups held
    epoch[0] += 1
    n_forward = _forward_region(u, v, n_ops, machine_succ, rank, mark, epoch[0], stack, forward)
    if n_forward < 0:
        _relink(v, u, machine_pred, machine_succ)  # back to a, u, v, b
        return -1
    epoch[0] += 1
    n_backward = _backward_region(u, v, n_ops, machine_pred, rank, mark, epoch[0], stack, backward)
    _sort_by_rank(backward, n_backward, rank)
    _sort_by_rank(forward, n_forward, rank)
    slots = stack  # the ranks the two groups hold, ascending: merge the two sorted lists of ranks
    i = j = 0
    for k in range(n_backward + n_forward):
        if j >= n_forward or (i < n_backward and rank[backward[i]] < rank[forward[j]]):
            slots[k] = rank[backward[i]]
            i += 1
        else:
            slots[k] = rank[forward[j]]
            j += 1
    for k in range(n_backward + n_forward):
        w = backward[k] if k < n_backward else forward[k - n_backward]
        order[slots[k]] = w
        rank[w] = slots[k]
    # 2. heads, forward from v: a node is recomputed when a predecessor's head changed or its predecessors did
    epoch[0] += 1
    stamp = epoch[0]
    pending = 0
    for w in (v, u, b):
        if w >= 0:
            mark[w] = stamp
            pending += 1
    position = rank[v]
    while pending > 0:
        w = order[position]
        position += 1
        if mark[w] != stamp:
            continue
        pending -= 1
        p, q = _job_pred(w, n_ops), machine_pred[w]
        new_head = max(head[p] + duration[p] if p >= 0 else 0, head[q] + duration[q] if q >= 0 else 0)
        if new_head != head[w]:
            head[w] = new_head
            for s in (_job_succ(w, n_ops), machine_succ[w]):
                if s >= 0 and mark[s] != stamp:
                    mark[s] = stamp
                    pending += 1
    # 3. tails, backward from u
    epoch[0] += 1
    stamp = epoch[0]
    pending = 0
    for w in (u, v, a):
        if w >= 0:
            mark[w] = stamp
            pending += 1
    position = rank[u]
    while pending > 0:
        w = order[position]
        position -= 1
        if mark[w] != stamp:
            continue
        pending -= 1
        s, t = _job_succ(w, n_ops), machine_succ[w]
        new_tail = max(tail[s] + duration[s] if s >= 0 else 0, tail[t] + duration[t] if t >= 0 else 0)
        if new_tail != tail[w]:
            tail[w] = new_tail
            for p in (_job_pred(w, n_ops), machine_pred[w]):
                if p >= 0 and mark[p] != stamp:
                    mark[p] = stamp
                    pending += 1
    return _makespan(duration, n_ops, head)


@njit(cache=True)
def _critical_arc(u, v, duration, head, tail, makespan) -> bool:
    return head[u] + duration[u] == head[v] and head[u] + duration[u] + tail[u] == makespan and head[v] + duration[v] + tail[v] == makespan


@njit(cache=True)
def n5_moves(duration, n_ops, machine_pred, machine_succ, head, tail, rank, makespan, check_cycles, mark, epoch, stack, region, mask) -> int:
    """``mask[u] = 1`` where swapping ``u`` with its machine successor is an N5 move (module docstring), else 0;
    returns how many there are. ``check_cycles``: also drop moves that would close a cycle, which only zero-length
    operations make possible (with positive durations a swap of a critical arc never does)."""
    count = 0
    for u in range(len(duration)):
        mask[u] = 0
        v = machine_succ[u]
        if v < 0 or not _critical_arc(u, v, duration, head, tail, makespan):
            continue
        p, s = machine_pred[u], machine_succ[v]
        opens_block = not (p >= 0 and _critical_arc(p, u, duration, head, tail, makespan))
        closes_block = not (s >= 0 and _critical_arc(v, s, duration, head, tail, makespan))
        if not ((opens_block and head[u] > 0) or (closes_block and tail[v] > 0)):
            continue
        if check_cycles:
            epoch[0] += 1
            _relink(u, v, machine_pred, machine_succ)
            closes_cycle = _forward_region(u, v, n_ops, machine_succ, rank, mark, epoch[0], stack, region) < 0
            _relink(v, u, machine_pred, machine_succ)
            if closes_cycle:
                continue
        mask[u] = 1
        count += 1
    return count


@njit(cache=True)
def _block_end(u, forward, duration, head, tail, makespan, machine_pred, machine_succ) -> int:
    """The last (``forward``) or first operation of ``u``'s critical block: the far end of its chain of critical
    machine arcs."""
    w = u
    while True:
        x = machine_succ[w] if forward else machine_pred[w]
        if x < 0 or not (_critical_arc(w, x, duration, head, tail, makespan) if forward else _critical_arc(x, w, duration, head, tail, makespan)):
            return w
        w = x


#: the kinds of N7 move of an operation ``v`` of block ``f .. l``.
TO_FRONT, TO_BACK, FIRST_AFTER, LAST_BEFORE = range(4)


@njit(cache=True)
def _n7_move(v, kind, first, last) -> tuple[int, int, bool]:
    """The operation an N7 move of ``kind`` at ``v`` (in block ``first .. last``) moves, the one it goes next to
    and whether it goes after it (-1, -1 if the move does not exist: ``v`` already at that end, or not inside its
    block for the last two kinds)."""
    if kind == TO_FRONT:
        return (v, first, False) if first != v else (-1, -1, False)
    if kind == TO_BACK:
        return (v, last, True) if last != v else (-1, -1, False)
    if first == v or last == v:
        return -1, -1, False
    return (first, v, True) if kind == FIRST_AFTER else (last, v, False)


@njit(cache=True)
def _acyclic(moved, target, after, n_ops, duration, head, tail) -> bool:
    """Balas and Vazacopoulos's sufficient condition for moving ``moved`` to right after (before) ``target`` on
    a critical path without closing a cycle (module docstring)."""
    if after:
        s = _job_succ(moved, n_ops)
        return s < 0 or duration[target] + tail[target] >= duration[s] + tail[s]
    p = _job_pred(moved, n_ops)
    return p < 0 or head[target] + duration[target] >= head[p] + duration[p]


@njit(cache=True)
def n7_moves(duration, n_ops, machine_pred, machine_succ, head, tail, makespan, masks) -> int:
    """``masks[kind, v] = 1`` where the N7 move of ``kind`` at ``v`` exists and is proved acyclic (int8
    ``[4, n]``); returns how many there are."""
    count = 0
    masks[:] = 0
    for v in range(len(duration)):
        if head[v] + duration[v] + tail[v] != makespan:
            continue
        first = _block_end(v, False, duration, head, tail, makespan, machine_pred, machine_succ)
        last = _block_end(v, True, duration, head, tail, makespan, machine_pred, machine_succ)
        for kind in range(4):
            moved, target, after = _n7_move(v, kind, first, last)
            if moved >= 0 and _acyclic(moved, target, after, n_ops, duration, head, tail):
                masks[kind, v] = 1
                count += 1
    return count


@njit(cache=True)
def n7_move_in_place(v, kind, duration, n_ops, machine_pred, machine_succ, head, tail, order, rank, makespan) -> int:
    """Make the N7 move of ``kind`` at ``v`` and re-evaluate from scratch; returns the new makespan, or -1
    (nothing changed) if the move does not exist or would close a cycle."""
    first = _block_end(v, False, duration, head, tail, makespan, machine_pred, machine_succ)
    last = _block_end(v, True, duration, head, tail, makespan, machine_pred, machine_succ)
    moved, target, after = _n7_move(v, kind, first, last)
    if moved < 0:
        return -1
    old_pred, old_succ = machine_pred.copy(), machine_succ.copy()
    p, s = machine_pred[moved], machine_succ[moved]  # take it out: p, moved, s -> p, s
    if p >= 0:
        machine_succ[p] = s
    if s >= 0:
        machine_pred[s] = p
    if after:  # target, b -> target, moved, b
        b = machine_succ[target]
        machine_pred[moved], machine_succ[moved], machine_succ[target] = target, b, moved
        if b >= 0:
            machine_pred[b] = moved
    else:  # a, target -> a, moved, target
        a = machine_pred[target]
        machine_pred[moved], machine_succ[moved], machine_pred[target] = a, target, moved
        if a >= 0:
            machine_succ[a] = moved
    new_makespan = evaluate_full(duration, n_ops, machine_pred, machine_succ, head, tail, order, rank)
    if new_makespan < 0:
        machine_pred[:], machine_succ[:] = old_pred, old_succ
        evaluate_full(duration, n_ops, machine_pred, machine_succ, head, tail, order, rank)
        return -1
    return new_makespan


@njit(cache=True)
def swap_estimates(moves, duration, n_ops, machine_pred, machine_succ, head, tail, out) -> None:
    """Taillard's (1994) estimate of the makespan after each swap ``moves[k]`` <-> its machine successor: the
    longest path through the two swapped operations in their new order, from the current heads and tails (a lower
    bound of the new makespan, exact for the pair), into ``out[k]``."""
    for k in range(len(moves)):
        u = moves[k]
        v = machine_succ[u]
        a, b = machine_pred[u], machine_succ[v]
        jp_v, jp_u, js_u, js_v = _job_pred(v, n_ops), _job_pred(u, n_ops), _job_succ(u, n_ops), _job_succ(v, n_ops)
        head_v = max(head[jp_v] + duration[jp_v] if jp_v >= 0 else 0, head[a] + duration[a] if a >= 0 else 0)
        head_u = max(head[jp_u] + duration[jp_u] if jp_u >= 0 else 0, head_v + duration[v])
        tail_u = max(tail[js_u] + duration[js_u] if js_u >= 0 else 0, tail[b] + duration[b] if b >= 0 else 0)
        tail_v = max(tail[js_v] + duration[js_v] if js_v >= 0 else 0, tail_u + duration[u])
        out[k] = max(head_v + duration[v] + tail_v, head_u + duration[u] + tail_u)


class DisjunctiveSchedule:
    """A complete schedule of ``instance``, changed one adjacent swap at a time.

    Attributes (int64 ``[n_operations]`` over flat ids ``job * n_ops + op``, ``-1`` for none):
        machine_pred, machine_succ: the operation before / after on the same machine.
        head, tail: longest paths to the start / from the end (instance time units).
        order, rank: a topological order of the graph and each operation's position in it.
        makespan: the schedule's makespan.
    """

    def __init__(self, instance: JobShopInstance, sequences: list[list[int]]) -> None:
        """``sequences``: the operations of every machine in the order they run (flat ids).

        Raises:
            ValueError: if the sequences do not cover every operation once on its machine, or make a cycle.
        """
        n = instance.n_operations
        machine_of = instance.machines.ravel()
        self.instance = instance
        self.duration = instance.durations.ravel().astype(np.int64)
        self.n_ops = instance.n_ops
        self.machine_pred = np.full(n, -1, dtype=np.int64)
        self.machine_succ = np.full(n, -1, dtype=np.int64)
        seen = np.zeros(n, dtype=bool)
        for machine, sequence in enumerate(sequences):
            ops = np.asarray(sequence, dtype=np.int64)
            if ops.size and (ops.min() < 0 or ops.max() >= n or (machine_of[ops] != machine).any() or seen[ops].any()):
                raise ValueError(f"machine {machine}'s sequence {ops.tolist()} holds operations of other machines, repeats or unknown ids")
            seen[ops] = True
            self.machine_pred[ops[1:]] = ops[:-1]
            self.machine_succ[ops[:-1]] = ops[1:]
        if not seen.all():
            raise ValueError(f"the machine sequences miss operations {np.flatnonzero(~seen).tolist()[:10]}: a complete schedule lists every one")
        self.head = np.zeros(n, dtype=np.int64)
        self.tail = np.zeros(n, dtype=np.int64)
        self.order = np.zeros(n, dtype=np.int64)
        self.rank = np.zeros(n, dtype=np.int64)
        self._mark = np.zeros(n, dtype=np.int64)
        self._epoch = np.zeros(1, dtype=np.int64)
        self._scratch = np.zeros((3, n), dtype=np.int64)
        self._check_cycles = bool((self.duration == 0).any())
        self.makespan = 0
        self.reevaluate()

    @classmethod
    def from_start_times(cls, instance: JobShopInstance, start_times: np.ndarray) -> "DisjunctiveSchedule":
        """The machine sequences of a feasible schedule (start order, ties by id); its semi-active version."""
        return cls(instance, tasks_by_resource(instance.machines.ravel(), np.asarray(start_times).ravel(), instance.n_machines))

    def reevaluate(self) -> int:
        """Recompute heads, tails, order and makespan from scratch; returns the makespan.

        Raises:
            ValueError: if the machine sequences make a cycle.
        """
        makespan = evaluate_full(self.duration, self.n_ops, self.machine_pred, self.machine_succ, self.head, self.tail, self.order, self.rank)
        if makespan < 0:
            raise ValueError("the machine sequences contain a cycle: they describe no feasible schedule")
        self.makespan = int(makespan)
        return self.makespan

    def swap(self, u: int) -> int:
        """Swap operation ``u`` with its machine successor (incremental re-evaluation); returns the new makespan.

        Raises:
            ValueError: if ``u`` is last on its machine, or the swap would close a cycle (the schedule is then
                unchanged).
        """
        if not 0 <= u < len(self.duration) or self.machine_succ[u] < 0:
            raise ValueError(f"operation {u} has no machine successor to swap with")
        stack, forward, backward = self._scratch
        makespan = swap_in_place(
            u, self.duration, self.n_ops, self.machine_pred, self.machine_succ, self.head, self.tail,
            self.order, self.rank, self._mark, self._epoch, stack, forward, backward,
        )
        if makespan < 0:
            raise ValueError(f"swapping operation {u} with {self.machine_succ[u]} would close a cycle")
        self.makespan = int(makespan)
        return self.makespan

    def moves(self, mask: np.ndarray | None = None) -> np.ndarray:
        """int8 ``[n_operations]``: 1 where swapping the operation with its machine successor is an N5 move
        (written into ``mask`` if given)."""
        mask = np.zeros(len(self.duration), dtype=np.int8) if mask is None else mask
        stack, region, _ = self._scratch
        n5_moves(
            self.duration, self.n_ops, self.machine_pred, self.machine_succ, self.head, self.tail, self.rank,
            self.makespan, self._check_cycles, self._mark, self._epoch, stack, region, mask,
        )
        return mask

    def n7_moves(self) -> np.ndarray:
        """int8 ``[4, n_operations]``: 1 where the N7 move of each kind (:data:`TO_FRONT`, :data:`TO_BACK`,
        :data:`FIRST_AFTER`, :data:`LAST_BEFORE`) at the operation exists and is proved acyclic."""
        masks = np.zeros((4, len(self.duration)), dtype=np.int8)
        n7_moves(self.duration, self.n_ops, self.machine_pred, self.machine_succ, self.head, self.tail, self.makespan, masks)
        return masks

    def n7_move(self, v: int, kind: int) -> int:
        """Make the N7 move of ``kind`` at operation ``v`` (re-evaluated from scratch); returns the new makespan.

        Raises:
            ValueError: if the move does not exist (``v`` already at that end of its block, or not inside it) or
                would close a cycle (the schedule is then unchanged).
        """
        if not 0 <= v < len(self.duration) or kind not in (TO_FRONT, TO_BACK, FIRST_AFTER, LAST_BEFORE):
            raise ValueError(f"no N7 move of kind {kind} at operation {v}: kinds are 0-3 and operations 0-{len(self.duration) - 1}")
        makespan = n7_move_in_place(v, kind, self.duration, self.n_ops, self.machine_pred, self.machine_succ, self.head, self.tail,
                                    self.order, self.rank, self.makespan)
        if makespan < 0:
            raise ValueError(f"the N7 move of kind {kind} at operation {v} does not exist in this schedule or would close a cycle")
        self.makespan = int(makespan)
        return self.makespan

    def estimates(self, moves: np.ndarray) -> np.ndarray:
        """int64 ``[len(moves)]``: Taillard's estimate of the makespan after each move (:func:`swap_estimates`)."""
        out = np.zeros(len(moves), dtype=np.int64)
        swap_estimates(np.asarray(moves, dtype=np.int64), self.duration, self.n_ops, self.machine_pred, self.machine_succ, self.head, self.tail, out)
        return out

    def critical(self) -> np.ndarray:
        """bool ``[n_operations]``: the operations on a longest path."""
        return self.head + self.duration + self.tail == self.makespan

    def start_times(self) -> np.ndarray:
        """The semi-active start times, int64 ``[n_jobs, n_ops]``."""
        return self.head.reshape(self.instance.n_jobs, self.n_ops).copy()

    def sequences(self) -> list[list[int]]:
        """The operations of every machine in order (flat ids), read off the ``machine_succ`` chains."""
        machine_of = self.instance.machines.ravel()
        sequences: list[list[int]] = [[] for _ in range(self.instance.n_machines)]
        for first in np.flatnonzero(self.machine_pred < 0).tolist():
            op = first
            while op >= 0:
                sequences[machine_of[first]].append(op)
                op = int(self.machine_succ[op])
        return sequences

    def copy(self) -> "DisjunctiveSchedule":
        twin = object.__new__(DisjunctiveSchedule)
        twin.__dict__.update(self.__dict__)
        for name in ("machine_pred", "machine_succ", "head", "tail", "order", "rank", "_mark", "_epoch", "_scratch"):
            setattr(twin, name, getattr(self, name).copy())
        return twin
