"""The compiled serving logic of llmrouting: the only place where requests are admitted, prefilled, decoded,
preempted and finished.

:class:`~schedgym.envs.llmrouting.simulator.ServingSimulator` (so every router, ``LlmRoutingEnv`` and the GPU
replay) and :class:`~schedgym.envs.llmrouting.batched.LlmRoutingBatch` (B simulations in stacked arrays) hold
their state as the numpy arrays of :class:`ServingTables` and :class:`ServingState` and call these functions.
Compiled with numba (``cache=True``), as the other problems' kernels are. The semantics are those described in
:mod:`schedgym.envs.llmrouting.simulator`.

One iteration is split in two, :func:`begin_iteration` (admission, decode blocks and preemption, prefill chunks)
and :func:`end_iteration` (tokens emitted, requests finished), so that an external executor can run and time the
batch in between; without one, :func:`iterate` times it with the latency profile and runs of identical
decode-only iterations are served without being stepped one by one (:func:`decode_run`).

Sizes: n requests, R replicas, Q = the largest ``max_batch``, U distinct prefix blocks (ids made dense).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.experimental import structref

from schedgym.envs.llmrouting.length_predictor import predicted_output_tokens

#: ``ServingTables.config`` fields: requests, replicas, tokens per prefix block, whether prefix ids exist, whether
#: decode runs are fast-forwarded (0: every iteration is stepped, as a check), whether requests may migrate.
N_REQUESTS, N_REPLICAS, PREFIX_BLOCK_TOKENS, HAS_PREFIX, FAST_FORWARD, MIGRATION = range(6)
#: ``ServingTables.role`` values: a replica that prefills and decodes, one that only prefills (its requests'
#: KV caches go to a decode replica after the first token), one that only decodes.
ROLE_MIXED, ROLE_PREFILL, ROLE_DECODE = range(3)
ROLES = ("mixed", "prefill", "decode")
#: ``ServingState.counts`` fields: requests routed, requests finished, requests counted in the reward's window,
#: decode runs planned, decode-run parts served, migrations started, migrations completed, migrations aborted.
ROUTED, FINISHED, N_ALIVE, RUNS_PLANNED, RUN_PARTS, MIGRATIONS, MIGRATED, MIGRATION_ABORTS = range(8)


class ServingTables(NamedTuple):
    """The instance as the kernels read it (fixed for a simulation).

    Attributes:
        config: int64 ``[6]``: see ``N_REQUESTS`` ... ``MIGRATION``.
        arrival_s: float ``[n]``; prompt_tokens / output_tokens: int64 ``[n]``; predicted_output: float ``[n]``,
            the output lengths a router may know (:mod:`~schedgym.envs.llmrouting.length_predictor`).
        prefix_start / prefix_block: int64 ``[n + 1]`` / ``[total]``: request i's leading prompt blocks are
            ``prefix_block[prefix_start[i]:prefix_start[i + 1]]`` (dense ids, equal id = same content).
        speed: float ``[R]``; kv_blocks, block_tokens, token_budget, max_batch, prefix_cache, cache_capacity:
            int64 ``[R]``, the replica specs (``cache_capacity``: prefix blocks a replica's cache keeps).
        prefill_tokens ``[T]``, log_batch ``[nb]``, log_context ``[nc]``: the grid every replica's latency profile
            is measured on; prefill_s ``[R, T]`` and decode_s ``[R, nb, nc]``: each replica's times there (seconds).
        kv_bytes_per_token: float ``[R]``, the KV bytes a token holds on each replica's model (what a migration
            or a prefill-to-decode transfer copies); link: float ``[2]``, the KV link's seconds per byte and latency
            (seconds).
        role: int64 ``[R]``, ``ROLE_MIXED`` / ``ROLE_PREFILL`` / ``ROLE_DECODE``; advance_order: int64 ``[R]``, the
            order replicas are advanced in (prefill replicas first: they hand requests to decode replicas).
    """

    config: np.ndarray
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    predicted_output: np.ndarray
    prefix_start: np.ndarray
    prefix_block: np.ndarray
    speed: np.ndarray
    kv_blocks: np.ndarray
    block_tokens: np.ndarray
    token_budget: np.ndarray
    max_batch: np.ndarray
    prefix_cache: np.ndarray
    cache_capacity: np.ndarray
    prefill_tokens: np.ndarray
    prefill_s: np.ndarray
    log_batch: np.ndarray
    log_context: np.ndarray
    decode_s: np.ndarray
    kv_bytes_per_token: np.ndarray
    link: np.ndarray
    role: np.ndarray
    advance_order: np.ndarray


class ServingState(NamedTuple):
    """The state of one simulation.

    Attributes:
        replica, prefill_target, prefilled, generated, kv_tokens, blocks, prefix_hit_tokens, preemptions: int64
            ``[n]`` per request (see :class:`~schedgym.envs.llmrouting.simulator.ServingSimulator`).
        first_token_s / finish_s: float ``[n]``, NaN until known.
        clock_s: float ``[R]``: end of each replica's last iteration; free_blocks, iterations: int64 ``[R]``.
        waiting / waiting_head / waiting_count: int64 ``[R, n]`` / ``[R]`` / ``[R]``: each replica's queue as a ring.
        running / running_count: int64 ``[R, Q]`` / ``[R]``: the running batch in admission order.
        run_steps / run_done: int64 ``[R]``: a decode run's length and iterations served (0 / 0: no run);
            run_clock_s / run_context / run_sum_s: float ``[R]``: its start, mean context at its start, and the
            duration of the iterations served so far (summed from its start).
        cache_prev / cache_next: int64 ``[R, U]``: each replica's prefix cache as a list from least to most
            recently used (-1 ends); in_cache: bool ``[R, U]``; cache_first / cache_last / cache_size: int64 ``[R]``.
        alive: int64 ``[n]``: routed requests not known to have left before the reward's last time
            (``counts[N_ALIVE]`` used); reward_clock_s: float ``[1]``: the reward's last time.
        migrate_to: int64 ``[n]``: the destination of a request's KV copy in flight (-1: none); migrate_done_s:
            float ``[n]``, when the copy completes; migrate_blocks: int64 ``[n]``, the blocks held for it there.
        outgoing / incoming: int64 ``[R]``: copies in flight from / to each replica (an incoming one holds a batch
            slot).
        available_s: float ``[n]``: when a request may be admitted where it waits (its arrival; for one handed
            from a prefill replica, its first token); ready_s: float ``[n]``: when its KV cache has arrived at a
            decode replica (it decodes from the first iteration starting then); held_at: int64 ``[n]``: the
            prefill replica still holding its KV cache until a decode replica admits it (-1: none); decode_to:
            int64 ``[n]``: the decode replica a router chose for it (-1: the least loaded at its first token).
        counts: int64 ``[8]``: see ``ROUTED`` ... ``MIGRATION_ABORTS``.
    """

    replica: np.ndarray
    prefill_target: np.ndarray
    prefilled: np.ndarray
    generated: np.ndarray
    kv_tokens: np.ndarray
    blocks: np.ndarray
    prefix_hit_tokens: np.ndarray
    preemptions: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    clock_s: np.ndarray
    free_blocks: np.ndarray
    iterations: np.ndarray
    waiting: np.ndarray
    waiting_head: np.ndarray
    waiting_count: np.ndarray
    running: np.ndarray
    running_count: np.ndarray
    run_steps: np.ndarray
    run_done: np.ndarray
    run_clock_s: np.ndarray
    run_context: np.ndarray
    run_sum_s: np.ndarray
    cache_prev: np.ndarray
    cache_next: np.ndarray
    in_cache: np.ndarray
    cache_first: np.ndarray
    cache_last: np.ndarray
    cache_size: np.ndarray
    alive: np.ndarray
    reward_clock_s: np.ndarray
    migrate_to: np.ndarray
    migrate_done_s: np.ndarray
    migrate_blocks: np.ndarray
    outgoing: np.ndarray
    incoming: np.ndarray
    available_s: np.ndarray
    ready_s: np.ndarray
    held_at: np.ndarray
    decode_to: np.ndarray
    counts: np.ndarray


@structref.register
class _TablesRefType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


@structref.register
class _StateRefType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


class TablesRef(structref.StructRefProxy):
    """:class:`ServingTables` as one numba object over the same arrays: what Python passes to the kernels (a call
    then unboxes one object instead of every array, about 1 us instead of 11)."""


class StateRef(structref.StructRefProxy):
    """:class:`ServingState` as one numba object over the same arrays (see :class:`TablesRef`)."""


structref.define_proxy(TablesRef, _TablesRefType, list(ServingTables._fields))
structref.define_proxy(StateRef, _StateRefType, list(ServingState._fields))


def kernel_refs(tables: ServingTables, state: ServingState) -> tuple[TablesRef, StateRef]:
    """The objects the kernels are called with, sharing the arrays of ``tables`` and ``state``."""
    return TablesRef(*tables), StateRef(*state)


def build_tables(workload, replicas, profile, fast_forward: bool = True, link=None, migration: bool = False) -> ServingTables:
    """The tables of a workload served by ``replicas`` (a list of ``ReplicaSpec``), each timed by its own
    ``spec.profile`` or, where that is None, by ``profile``; ``link`` (a ``MigrationLink``, or None when nothing
    is copied) carries KV caches between replicas: migrated ones (with ``migration``) and those of requests handed
    from prefill to decode replicas.

    Raises:
        ValueError: if the replicas' profiles are not measured on one grid (prefill chunks, decode batches and
            contexts).
    """
    profiles = [spec.profile_or(profile) for spec in replicas]
    grid = lambda p: (p.prefill_tokens.tolist(), p.decode_batch.tolist(), p.decode_context.tolist())  # noqa: E731
    if any(grid(p) != grid(profiles[0]) for p in profiles):
        raise ValueError("the replicas' latency profiles are measured on different grids; measure (or derive) them on one "
                         "grid, as `schedgym.envs.llmrouting.derived` and the replay calibration do")
    n = workload.n_requests
    if workload.prefix_ids is None:
        prefix_start, prefix_block = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    else:
        lengths = np.array([len(ids) for ids in workload.prefix_ids], dtype=np.int64)
        prefix_start = np.concatenate(([0], np.cumsum(lengths)))
        flat = np.fromiter((block for ids in workload.prefix_ids for block in ids), dtype=np.int64, count=int(lengths.sum()))
        prefix_block = np.unique(flat, return_inverse=True)[1].astype(np.int64) if flat.size else flat
    spec = lambda name, dtype=np.int64: np.array([getattr(r, name) for r in replicas], dtype=dtype)  # noqa: E731
    role = np.array([ROLES.index(r.role) for r in replicas], dtype=np.int64)
    return ServingTables(
        config=np.array([n, len(replicas), workload.prefix_block_tokens, workload.prefix_ids is not None, fast_forward, migration], dtype=np.int64),
        arrival_s=np.array(workload.arrival_s, dtype=np.float64),  # copies: writable arrays are one type for numba
        prompt_tokens=np.array(workload.prompt_tokens, dtype=np.int64),
        output_tokens=np.array(workload.output_tokens, dtype=np.int64),
        predicted_output=np.array(predicted_output_tokens(workload), dtype=np.float64),
        prefix_start=prefix_start,
        prefix_block=prefix_block,
        speed=spec("speed", np.float64),
        kv_blocks=spec("kv_blocks"),
        block_tokens=spec("block_tokens"),
        token_budget=spec("token_budget"),
        max_batch=spec("max_batch"),
        prefix_cache=spec("prefix_cache"),
        cache_capacity=np.array([r.kv_blocks * r.block_tokens // workload.prefix_block_tokens for r in replicas], dtype=np.int64),
        prefill_tokens=np.array(profiles[0].prefill_tokens, dtype=np.float64),
        prefill_s=np.array([p.prefill_s for p in profiles], dtype=np.float64),
        log_batch=np.array(profiles[0]._log_batch, dtype=np.float64),
        log_context=np.array(profiles[0]._log_context, dtype=np.float64),
        decode_s=np.array([p.decode_s for p in profiles], dtype=np.float64, order="C"),
        kv_bytes_per_token=np.array([p.kv_bytes_per_token if link is not None else 0 for p in profiles], dtype=np.float64),
        link=np.array([1.0 / link.bandwidth_bytes_per_s, link.latency_s] if link is not None else [np.inf, np.inf], dtype=np.float64),
        role=role,
        advance_order=np.argsort(role != ROLE_PREFILL, kind="stable").astype(np.int64),
    )


def allocate_state(tables: ServingTables) -> ServingState:
    """A fresh state for ``tables``: nothing routed, every replica idle with its whole KV cache free."""
    n, n_replicas = int(tables.config[N_REQUESTS]), int(tables.config[N_REPLICAS])
    blocks = int(tables.prefix_block.max()) + 1 if tables.prefix_block.size else 0
    request = lambda fill=0: np.full(n, fill, dtype=np.int64)  # noqa: E731
    per_replica = lambda fill=0: np.full(n_replicas, fill, dtype=np.int64)  # noqa: E731
    return ServingState(
        replica=request(-1), prefill_target=tables.prompt_tokens.copy(), prefilled=request(), generated=request(),
        kv_tokens=request(), blocks=request(), prefix_hit_tokens=request(), preemptions=request(),
        first_token_s=np.full(n, np.nan), finish_s=np.full(n, np.nan),
        clock_s=np.zeros(n_replicas), free_blocks=tables.kv_blocks.copy(), iterations=per_replica(),
        waiting=np.zeros((n_replicas, n), dtype=np.int64), waiting_head=per_replica(), waiting_count=per_replica(),
        running=np.zeros((n_replicas, int(tables.max_batch.max())), dtype=np.int64), running_count=per_replica(),
        run_steps=per_replica(), run_done=per_replica(), run_clock_s=np.zeros(n_replicas), run_context=np.zeros(n_replicas),
        run_sum_s=np.zeros(n_replicas),
        cache_prev=np.full((n_replicas, blocks), -1, dtype=np.int64), cache_next=np.full((n_replicas, blocks), -1, dtype=np.int64),
        in_cache=np.zeros((n_replicas, blocks), dtype=bool), cache_first=per_replica(-1), cache_last=per_replica(-1),
        cache_size=per_replica(), alive=request(), reward_clock_s=np.array([float(tables.arrival_s[0])]),
        migrate_to=request(-1), migrate_done_s=np.full(n, np.nan), migrate_blocks=request(), outgoing=per_replica(),
        incoming=per_replica(), available_s=tables.arrival_s.copy(), ready_s=np.zeros(n), held_at=request(-1), decode_to=request(-1),
        counts=np.zeros(8, dtype=np.int64),
    )


# ---------------------------------------------------------------------------------------------------- latency
@njit(cache=True)
def interp_linear(x, xs, ys):
    """Piecewise-linear interpolation (numpy's ``interp`` inside), extended linearly beyond both ends (never below
    0 before the first point)."""
    last = len(xs) - 1
    if x <= xs[0]:
        return max(0.0, ys[0] + (ys[1] - ys[0]) / (xs[1] - xs[0]) * (x - xs[0]))
    if x >= xs[last]:
        return ys[last] + (ys[last] - ys[last - 1]) / (xs[last] - xs[last - 1]) * (x - xs[last])
    j = np.searchsorted(xs, x, side="right") - 1
    if xs[j] == x:
        return ys[j]
    return (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) * (x - xs[j]) + ys[j]


@njit(cache=True)
def decode_time_s(tables, r, batch, context):
    """One decode iteration of ``batch`` sequences at mean ``context`` on replica ``r``'s profile: bilinear in
    (log B, log C)."""
    xb = tables.log_batch
    lb = math.log(max(batch, 1.0))
    k = min(max(np.searchsorted(xb, lb, side="left") - 1, 0), len(xb) - 2)
    weight = (lb - xb[k]) / (xb[k + 1] - xb[k])
    lc = math.log(max(context, 1.0))
    low = interp_linear(lc, tables.log_context, tables.decode_s[r, k])
    high = interp_linear(lc, tables.log_context, tables.decode_s[r, k + 1])
    return max(low + weight * (high - low), 0.0)


@njit(cache=True)
def iteration_time_s(tables, r, prefill_tokens, decode_batch, mean_context):
    """One iteration of replica ``r`` (its profile, not divided by its speed) with ``prefill_tokens`` chunk tokens
    and ``decode_batch`` decodes (the fixed cost once)."""
    if decode_batch == 0:
        return interp_linear(float(prefill_tokens), tables.prefill_tokens, tables.prefill_s[r]) if prefill_tokens else 0.0
    time = decode_time_s(tables, r, float(decode_batch), mean_context)
    if prefill_tokens:
        time += interp_linear(float(prefill_tokens), tables.prefill_tokens, tables.prefill_s[r]) - tables.prefill_s[r, 0]
    return time


# ---------------------------------------------------------------------------------------------------- queues
@njit(cache=True)
def _blocks_for(tokens, block_tokens):
    return -(-tokens // block_tokens)


@njit(cache=True)
def waiting_at(state, r, k):
    """The ``k``-th waiting request of replica ``r`` (0 = head)."""
    return state.waiting[r, (state.waiting_head[r] + k) % state.waiting.shape[1]]


@njit(cache=True)
def _pop_waiting(state, r):
    request = state.waiting[r, state.waiting_head[r]]
    state.waiting_head[r] = (state.waiting_head[r] + 1) % state.waiting.shape[1]
    state.waiting_count[r] -= 1
    return request


@njit(cache=True)
def _push_waiting_front(state, r, request):
    head = (state.waiting_head[r] - 1) % state.waiting.shape[1]
    state.waiting[r, head] = request
    state.waiting_head[r] = head
    state.waiting_count[r] += 1


@njit(cache=True)
def route(tables, state, request, r):
    """Queue ``request`` (the next in arrival order, checked by the caller) at replica ``r``."""
    state.replica[request] = r
    state.waiting[r, (state.waiting_head[r] + state.waiting_count[r]) % state.waiting.shape[1]] = request
    state.waiting_count[r] += 1
    state.alive[state.counts[N_ALIVE]] = request
    state.counts[N_ALIVE] += 1
    state.counts[ROUTED] += 1


@njit(cache=True)
def _remove_running(state, r, request):
    count = state.running_count[r]
    at = 0
    while state.running[r, at] != request:
        at += 1
    for k in range(at, count - 1):
        state.running[r, k] = state.running[r, k + 1]
    state.running_count[r] = count - 1


@njit(cache=True)
def _is_running(state, r, request):
    for k in range(state.running_count[r]):
        if state.running[r, k] == request:
            return True
    return False


# ---------------------------------------------------------------------------------------------------- prefix cache
@njit(cache=True)
def _cache_unlink(state, r, block):
    prev, nxt = state.cache_prev[r, block], state.cache_next[r, block]
    if prev >= 0:
        state.cache_next[r, prev] = nxt
    else:
        state.cache_first[r] = nxt
    if nxt >= 0:
        state.cache_prev[r, nxt] = prev
    else:
        state.cache_last[r] = prev


@njit(cache=True)
def _cache_touch(state, r, block):
    """Make ``block`` the most recently used of replica ``r``'s cache (inserting it if absent)."""
    if state.in_cache[r, block]:
        if state.cache_last[r] == block:
            return
        _cache_unlink(state, r, block)
    else:
        state.in_cache[r, block] = True
        state.cache_size[r] += 1
    last = state.cache_last[r]
    state.cache_prev[r, block] = last
    state.cache_next[r, block] = -1
    if last >= 0:
        state.cache_next[r, last] = block
    else:
        state.cache_first[r] = block
    state.cache_last[r] = block


@njit(cache=True)
def prefix_hit_tokens_at(tables, state, r, request):
    """Prompt tokens of ``request`` found in replica ``r``'s prefix cache now (its leading cached blocks, at most
    the prompt minus one token)."""
    if not tables.config[HAS_PREFIX] or not tables.prefix_cache[r]:
        return 0
    hits = 0
    for k in range(tables.prefix_start[request], tables.prefix_start[request + 1]):
        if not state.in_cache[r, tables.prefix_block[k]]:
            break
        hits += 1
    return min(hits * tables.config[PREFIX_BLOCK_TOKENS], tables.prompt_tokens[request] - 1)


@njit(cache=True)
def _cache_prefix(tables, state, r, request):
    for k in range(tables.prefix_start[request], tables.prefix_start[request + 1]):
        _cache_touch(state, r, tables.prefix_block[k])
    while state.cache_size[r] > tables.cache_capacity[r]:
        oldest = state.cache_first[r]
        _cache_unlink(state, r, oldest)
        state.in_cache[r, oldest] = False
        state.cache_size[r] -= 1


@njit(cache=True)
def pending_prefill_tokens(state, r):
    """Prefill tokens still to compute at replica ``r`` (waiting prompts and unfinished prefills)."""
    pending = 0
    for k in range(state.waiting_count[r]):
        pending += state.prefill_target[waiting_at(state, r, k)]
    for k in range(state.running_count[r]):
        request = state.running[r, k]
        pending += state.prefill_target[request] - state.prefilled[request]
    return pending


@njit(cache=True)
def decode_batch(state, r):
    """Running requests of replica ``r`` past their prefill."""
    count = 0
    for k in range(state.running_count[r]):
        request = state.running[r, k]
        count += state.prefilled[request] >= state.prefill_target[request]
    return count


# ---------------------------------------------------------------------------------------------------- iterations
@njit(cache=True)
def has_work(tables, state, r, at_s):
    """Whether replica ``r`` has a running request, or a waiting one that has arrived by ``at_s`` (or its clock)."""
    if state.running_count[r] > 0:
        return True
    return state.waiting_count[r] > 0 and state.available_s[waiting_at(state, r, 0)] <= max(at_s, state.clock_s[r])


@njit(cache=True)
def _admit(tables, state, r, start_s):
    while (
        state.waiting_count[r] > 0 and state.running_count[r] + state.incoming[r] < tables.max_batch[r]
        and state.available_s[waiting_at(state, r, 0)] <= start_s
    ):
        request = waiting_at(state, r, 0)
        handed = state.held_at[request] >= 0
        needed = _blocks_for((state.kv_tokens[request] if handed else state.prefill_target[request]) + 1, tables.block_tokens[r])
        if needed > state.free_blocks[r]:
            break
        _pop_waiting(state, r)
        if handed:  # its KV cache is pulled from the prefill replica, which frees it
            _admit_handed(tables, state, r, request, needed, start_s)
            continue
        state.free_blocks[r] -= needed
        state.blocks[request] = needed
        hit = prefix_hit_tokens_at(tables, state, state.replica[request], request) if state.generated[request] == 0 else 0
        state.prefix_hit_tokens[request] = max(state.prefix_hit_tokens[request], hit)
        state.prefilled[request] = hit
        state.kv_tokens[request] = hit
        if hit:
            first = tables.prefix_start[request]
            for k in range(first, first + hit // tables.config[PREFIX_BLOCK_TOKENS]):
                _cache_touch(state, r, tables.prefix_block[k])
        state.running[r, state.running_count[r]] = request
        state.running_count[r] += 1


@njit(cache=True)
def _preempt_last(tables, state, r, released, n_released):
    """Preempt the most recently admitted request (recompute); it is recorded in ``released``."""
    state.running_count[r] -= 1
    victim = state.running[r, state.running_count[r]]
    if state.migrate_to[victim] >= 0:
        _abort_migration(state, victim)
    state.free_blocks[r] += state.blocks[victim]
    state.blocks[victim] = 0
    state.prefill_target[victim] = tables.prompt_tokens[victim] + state.generated[victim]
    state.prefilled[victim] = 0
    state.kv_tokens[victim] = 0
    state.preemptions[victim] += 1
    _push_waiting_front(state, r, victim)
    released[n_released] = victim
    return n_released + 1


@njit(cache=True)
def _reserve_decode_blocks(tables, state, r, start_s, decodes, released):
    """Write into ``decodes`` the running requests past their prefill (and with their KV cache there by
    ``start_s``), each holding a KV block for its next token; one that needs a block when none is free preempts
    the most recently admitted (possibly itself). Returns (decodes, preempted requests written to ``released``)."""
    block_tokens = tables.block_tokens[r]
    n_decoding, wanted = 0, 0
    for k in range(state.running_count[r]):
        request = state.running[r, k]
        if state.prefilled[request] >= state.prefill_target[request] and state.ready_s[request] <= start_s:
            decodes[n_decoding] = request
            n_decoding += 1
            wanted += _blocks_for(state.kv_tokens[request] + 1, block_tokens) > state.blocks[request]
    if wanted <= state.free_blocks[r]:
        for k in range(n_decoding):
            request = decodes[k]
            if _blocks_for(state.kv_tokens[request] + 1, block_tokens) > state.blocks[request]:
                state.blocks[request] += 1
        state.free_blocks[r] -= wanted
        return n_decoding, 0
    decoding = decodes[:n_decoding].copy()
    n_decodes, n_released = 0, 0
    for request in decoding:
        if not _is_running(state, r, request):
            continue  # preempted by an earlier request of this iteration
        if _blocks_for(state.kv_tokens[request] + 1, block_tokens) > state.blocks[request]:
            while state.free_blocks[r] == 0 and state.running[r, state.running_count[r] - 1] != request:
                n_released = _preempt_last(tables, state, r, released, n_released)
            if state.free_blocks[r] == 0:
                n_released = _preempt_last(tables, state, r, released, n_released)  # the request itself was the last admitted
                continue
            state.free_blocks[r] -= 1
            state.blocks[request] += 1
        decodes[n_decodes] = request
        n_decodes += 1
    return n_decodes, n_released


@njit(cache=True)
def begin_iteration(tables, state, r, chunks, decodes, released):
    """Plan one iteration of replica ``r`` from its clock (or the first waiting arrival, if later): admission,
    decode blocks (with preemption), prefill chunks in admission order within the token budget.

    Writes ``chunks`` int64 ``[Q, 3]`` (request, first token position, tokens), ``decodes`` int64 ``[Q]`` and the
    preempted requests into ``released`` int64 ``[Q]``. Returns (start_s, n_chunks, n_decodes, n_released);
    nothing to run when both counts are 0 (the clock is then moved to start_s).
    """
    state.run_steps[r] = 0
    state.run_done[r] = 0
    start_s = state.clock_s[r]
    if state.running_count[r] == 0 and state.waiting_count[r] > 0:
        start_s = max(start_s, state.available_s[waiting_at(state, r, 0)])
    _admit(tables, state, r, start_s)
    n_decodes, n_released = _reserve_decode_blocks(tables, state, r, start_s, decodes, released)
    budget = tables.token_budget[r] - n_decodes
    before, n_chunks = 0, 0  # prefill tokens still wanted by the requests before this one
    for k in range(state.running_count[r]):
        request = state.running[r, k]
        remaining = state.prefill_target[request] - state.prefilled[request]
        if remaining <= 0:
            continue
        chunk = max(min(remaining, budget - before), 0)
        before += remaining
        if chunk > 0:
            chunks[n_chunks, 0] = request
            chunks[n_chunks, 1] = state.prefilled[request]
            chunks[n_chunks, 2] = chunk
            n_chunks += 1
    if n_decodes == 0 and n_chunks == 0:
        state.clock_s[r] = start_s
        if state.running_count[r] > 0:  # every running request waits for its KV cache: idle until the first arrives
            first_s = np.inf
            for k in range(state.running_count[r]):
                first_s = min(first_s, state.ready_s[state.running[r, k]])
            state.clock_s[r] = max(start_s, first_s)
    return start_s, n_chunks, n_decodes, n_released


@njit(cache=True)
def end_iteration(tables, state, r, end_s, chunks, n_chunks, decodes, n_decodes, released):
    """Apply the iteration planned by :func:`begin_iteration`, ending at ``end_s``: prefill chunks, first tokens,
    decodes; finished requests leave (written to ``released``). Returns how many finished."""
    state.iterations[r] += 1
    n_first = 0
    for k in range(n_chunks):
        request, chunk = chunks[k, 0], chunks[k, 2]
        state.prefilled[request] += chunk
        state.kv_tokens[request] += chunk
        if state.prefilled[request] >= state.prefill_target[request] and state.generated[request] == 0:
            state.generated[request] = 1
            state.first_token_s[request] = end_s
            if tables.output_tokens[request] <= 1:
                released[n_first] = request
                n_first += 1
            elif tables.role[r] == ROLE_PREFILL:
                _hand_to_decode(tables, state, r, request, end_s)
    n_finished = n_first
    for k in range(n_decodes):
        request = decodes[k]
        state.generated[request] += 1
        state.kv_tokens[request] += 1
        if state.generated[request] >= tables.output_tokens[request]:
            released[n_finished] = request
            n_finished += 1
    for k in range(n_finished):
        _finish(tables, state, r, released[k], end_s)
    state.clock_s[r] = end_s
    return n_finished


@njit(cache=True)
def iterate(tables, state, r, chunks, decodes, released):
    """One iteration of replica ``r``, timed by the latency profile (divided by the replica's speed)."""
    start_s, n_chunks, n_decodes, _ = begin_iteration(tables, state, r, chunks, decodes, released)
    if n_chunks == 0 and n_decodes == 0:
        return
    mean_context = 0.0
    if n_decodes:
        total = 0
        for k in range(n_decodes):
            total += state.kv_tokens[decodes[k]]
        mean_context = float(total) / n_decodes
    tokens = 0
    for k in range(n_chunks):
        tokens += chunks[k, 2]
    end_s = start_s + iteration_time_s(tables, r, tokens, n_decodes, mean_context) / tables.speed[r]
    end_iteration(tables, state, r, end_s, chunks, n_chunks, decodes, n_decodes, released)


@njit(cache=True)
def _finish(tables, state, r, request, end_s):
    state.run_steps[r] = 0
    state.run_done[r] = 0
    state.finish_s[request] = end_s
    if state.migrate_to[request] >= 0:
        _abort_migration(state, request)
    _remove_running(state, r, request)
    state.free_blocks[r] += state.blocks[request]
    state.blocks[request] = 0
    state.counts[FINISHED] += 1
    if tables.prefix_cache[r] and tables.config[HAS_PREFIX]:
        _cache_prefix(tables, state, r, request)


@njit(cache=True)
def _plan_decode_run(tables, state, r):
    """Start the decode-only run replica ``r``'s batch can go on with from its clock: until its first request
    finishes, shortened until its new KV blocks fit. False if it is not at least 2 iterations (or one prefills)."""
    count, block_tokens = state.running_count[r], tables.block_tokens[r]
    steps, context = 1 << 62, 0
    for k in range(count):
        request = state.running[r, k]
        if state.prefilled[request] < state.prefill_target[request] or state.ready_s[request] > state.clock_s[r]:
            return False
        steps = min(steps, tables.output_tokens[request] - state.generated[request])
        context += state.kv_tokens[request]
    fits = False
    for _ in range(2):  # shorten the run until its new KV blocks fit
        extra = 0
        for k in range(count):
            request = state.running[r, k]
            extra += max(_blocks_for(state.kv_tokens[request] + steps, block_tokens) - state.blocks[request], 0)
        if extra <= state.free_blocks[r]:
            fits = True
            break
        steps = max(1, steps // 4)
    if not fits or steps < 2:
        return False
    state.run_steps[r] = steps
    state.run_done[r] = 0
    state.run_clock_s[r] = state.clock_s[r]
    state.run_context[r] = float(context) / count
    state.run_sum_s[r] = 0.0
    state.counts[RUNS_PLANNED] += 1
    return True


@njit(cache=True)
def decode_run(tables, state, r, until_s, released):
    """Serve the iterations of a run of identical decode-only iterations (nothing to admit or prefill, enough free
    blocks, no request finishing before the last) that start before ``until_s`` (at least one); False if the next
    iteration is not such a one (run it with :func:`iterate`). Equal to iterating one by one."""
    count = state.running_count[r]
    if not tables.config[FAST_FORWARD] or count == 0 or state.outgoing[r] > 0 or (
        state.waiting_count[r] > 0 and state.available_s[waiting_at(state, r, 0)] <= state.clock_s[r] and count < tables.max_batch[r]
    ):
        return False
    if state.run_steps[r] == 0 and not _plan_decode_run(tables, state, r):
        return False
    if state.waiting_count[r] > 0 and count < tables.max_batch[r]:  # a handed request becomes available later: admit it then
        until_s = min(until_s, state.available_s[waiting_at(state, r, 0)])
    speed, start_clock, context = tables.speed[r], state.run_clock_s[r], state.run_context[r]
    done, total = state.run_done[r], state.run_steps[r]
    sum_s, end_s, steps = state.run_sum_s[r], 0.0, 0
    while done + steps < total:
        duration = decode_time_s(tables, r, float(count), context + (done + steps)) / speed
        next_sum = sum_s + duration
        next_end = start_clock + next_sum
        if steps >= 1 and not next_end - duration < until_s:
            break
        sum_s, end_s = next_sum, next_end
        steps += 1
    block_tokens = tables.block_tokens[r]
    n_finished = 0
    for k in range(count):
        request = state.running[r, k]
        state.generated[request] += steps
        state.kv_tokens[request] += steps
        needed = _blocks_for(state.kv_tokens[request], block_tokens)
        state.free_blocks[r] -= max(needed - state.blocks[request], 0)
        state.blocks[request] = max(state.blocks[request], needed)
        if state.generated[request] >= tables.output_tokens[request]:
            released[n_finished] = request
            n_finished += 1
    state.counts[RUN_PARTS] += 1
    state.run_done[r] = done + steps
    state.run_sum_s[r] = sum_s
    state.clock_s[r] = end_s
    state.iterations[r] += steps
    if done + steps >= total:
        state.run_steps[r] = 0
        state.run_done[r] = 0
    for k in range(n_finished):
        _finish(tables, state, r, released[k], end_s)
    return True


@njit(cache=True)
def _advance_replica(tables, state, r, time_s, chunks, decodes, released):
    """Run replica ``r``'s iterations that start before ``time_s`` (an idle replica's clock moves to it); an idle
    replica's queue head available after its clock (a request handed from a prefill replica) starts it then."""
    while state.clock_s[r] < time_s and (
        has_work(tables, state, r, state.clock_s[r])
        or (state.running_count[r] == 0 and state.waiting_count[r] > 0 and state.available_s[waiting_at(state, r, 0)] < time_s)
    ):
        if not _serve_once(tables, state, r, time_s, chunks, decodes, released):
            return  # blocked: its free blocks are held by requests handed to decode replicas
    if not has_work(tables, state, r, time_s):
        state.clock_s[r] = max(state.clock_s[r], time_s)


@njit(cache=True)
def _serve_once(tables, state, r, until_s, chunks, decodes, released):
    """Serve replica ``r``'s next iteration (or decode run, up to ``until_s``). False if it cannot move: a
    prefill replica with nothing running whose queue head waits for blocks still held by requests it handed
    over (a decode replica admitting one of them moves its clock on)."""
    clock_s, iterations = state.clock_s[r], state.iterations[r]
    if not decode_run(tables, state, r, until_s, released):
        iterate(tables, state, r, chunks, decodes, released)
    return state.clock_s[r] != clock_s or state.iterations[r] != iterations


@njit(cache=True)
def _prefill_blocked(tables, state, time_s):
    """Whether a prefill replica stopped short of ``time_s`` with a queue it can serve now."""
    for r in range(tables.config[N_REPLICAS]):
        if tables.role[r] == ROLE_PREFILL and state.clock_s[r] < time_s and state.waiting_count[r] > 0 and state.running_count[r] == 0:
            return True
    return False


@njit(cache=True)
def advance_to(tables, state, time_s, chunks, decodes, released):
    """Run every replica's iterations that start before ``time_s`` (an iteration in flight runs to its end),
    handing migrated requests over on the way (:func:`complete_migrations`)."""
    complete_migrations(tables, state, time_s, chunks, decodes, released)
    for r in tables.advance_order:
        _advance_replica(tables, state, r, time_s, chunks, decodes, released)
    for _ in range(tables.config[N_REPLICAS]):  # prefill replicas whose memory the decode replicas freed go on
        if not _prefill_blocked(tables, state, time_s):
            break
        for r in tables.advance_order:
            _advance_replica(tables, state, r, time_s, chunks, decodes, released)


# ---------------------------------------------------------------------------------------------------- disaggregation
@njit(cache=True)
def least_loaded_decode_replica(tables, state):
    """The decode replica with the most free KV blocks once its queue is admitted (DistServe's least loaded)."""
    best, best_free = -1, -(1 << 62)
    for r in range(tables.config[N_REPLICAS]):
        if tables.role[r] != ROLE_DECODE:
            continue
        free = state.free_blocks[r]
        for k in range(state.waiting_count[r]):
            waiting = waiting_at(state, r, k)
            free -= _blocks_for((state.kv_tokens[waiting] if state.held_at[waiting] >= 0 else state.prefill_target[waiting]) + 1, tables.block_tokens[r])
        if free > best_free:
            best, best_free = r, free
    return best


@njit(cache=True)
def _hand_to_decode(tables, state, r, request, end_s):
    """``request`` had its first token at prefill replica ``r`` at ``end_s``: it leaves ``r``'s batch, keeps its
    KV blocks there, and waits at its decode replica (the router's choice, else the least loaded one)."""
    _remove_running(state, r, request)
    state.run_steps[r] = 0
    state.run_done[r] = 0
    dst = state.decode_to[request] if state.decode_to[request] >= 0 else least_loaded_decode_replica(tables, state)
    state.held_at[request] = r
    state.available_s[request] = end_s
    state.replica[request] = dst
    _insert_waiting(state, dst, request)


@njit(cache=True)
def _admit_handed(tables, state, r, request, needed, start_s):
    """Admit a request handed from a prefill replica: its KV cache is pulled over the link (it decodes from the
    first iteration after ``latency + KV bytes / bandwidth``) and its prefill replica frees the blocks."""
    source = state.held_at[request]
    state.free_blocks[source] += state.blocks[request]
    if state.running_count[source] == 0:  # a prefill replica blocked on its memory goes on from now
        state.clock_s[source] = max(state.clock_s[source], start_s)
    state.held_at[request] = -1
    state.free_blocks[r] -= needed
    state.blocks[request] = needed
    state.ready_s[request] = start_s + tables.link[1] + state.kv_tokens[request] * tables.kv_bytes_per_token[source] * tables.link[0]
    state.running[r, state.running_count[r]] = request
    state.running_count[r] += 1


# ---------------------------------------------------------------------------------------------------- migration
@njit(cache=True)
def migration_candidate(tables, state, src, dst, queued):
    """The request a migration from replica ``src`` to ``dst`` moves, or -1 if none can. ``queued``: the most
    recently queued request waiting at ``src`` (it holds no KV cache, so it changes queues at once); otherwise
    the decoding request of ``src`` with the fewest KV tokens (the cheapest copy, Llumnix's choice) that is not
    being copied already and that ``dst`` has a batch slot and free blocks for."""
    if src == dst or not tables.config[MIGRATION] or tables.role[dst] == ROLE_PREFILL:
        return -1
    if queued:
        return waiting_at(state, src, state.waiting_count[src] - 1) if state.waiting_count[src] > 0 else -1
    if state.running_count[dst] + state.incoming[dst] >= tables.max_batch[dst]:
        return -1
    best, best_tokens = -1, 1 << 62
    for k in range(state.running_count[src]):
        request = state.running[src, k]
        if state.migrate_to[request] >= 0 or state.prefilled[request] < state.prefill_target[request]:
            continue
        if state.kv_tokens[request] < best_tokens and _blocks_for(state.kv_tokens[request] + 1, tables.block_tokens[dst]) <= state.free_blocks[dst]:
            best, best_tokens = request, state.kv_tokens[request]
    return best


@njit(cache=True)
def write_migration_mask(tables, state, mask):
    """Write into ``mask`` (int8 ``[2, R', R']``, R' >= the replicas) whether a migration of each kind (0: a
    decoding request, 1: a queued one) can move a request from each source to each destination now."""
    mask[:] = 0
    n_replicas = tables.config[N_REPLICAS]
    for kind in range(2):
        for src in range(n_replicas):
            for dst in range(n_replicas):
                mask[kind, src, dst] = migration_candidate(tables, state, src, dst, kind == 1) >= 0


@njit(cache=True)
def start_migration(tables, state, request, dst, now_s):
    """Move ``request`` (a :func:`migration_candidate`) to replica ``dst`` at ``now_s``, when both replicas
    stand at ``now_s``. A waiting request changes queues at once (placed by arrival among ``dst``'s waiting
    ones; a request handed from a prefill replica keeps its KV cache there until admitted). A decoding one starts a live copy of its KV cache (Llumnix): ``dst`` holds blocks and a batch slot for
    it, the source keeps decoding it, and at the source's first iteration boundary after the copy's
    ``latency + KV bytes / bandwidth`` it is handed over (:func:`complete_migrations`), without recompute."""
    src = state.replica[request]
    state.counts[MIGRATIONS] += 1
    if state.blocks[request] == 0 or state.held_at[request] >= 0:  # waiting (a handed request's blocks are at its prefill replica)
        _remove_waiting(state, src, request)
        _insert_waiting(state, dst, request)
        state.replica[request] = dst
        state.counts[MIGRATED] += 1
        return
    reserve = _blocks_for(state.kv_tokens[request] + 1, tables.block_tokens[dst])
    state.free_blocks[dst] -= reserve
    state.migrate_blocks[request] = reserve
    state.migrate_to[request] = dst
    bytes_copied = state.kv_tokens[request] * tables.kv_bytes_per_token[src]
    state.migrate_done_s[request] = now_s + tables.link[1] + bytes_copied * tables.link[0]
    state.outgoing[src] += 1
    state.incoming[dst] += 1
    state.run_steps[src] = 0  # the source now steps iteration by iteration, to hand over at a boundary
    state.run_done[src] = 0


@njit(cache=True)
def _remove_waiting(state, r, request):
    capacity, count = state.waiting.shape[1], state.waiting_count[r]
    at = 0
    while waiting_at(state, r, at) != request:
        at += 1
    for k in range(at, count - 1):
        state.waiting[r, (state.waiting_head[r] + k) % capacity] = waiting_at(state, r, k + 1)
    state.waiting_count[r] = count - 1


@njit(cache=True)
def _insert_waiting(state, r, request):
    """Queue ``request`` at replica ``r`` after every waiting request available no later than it."""
    capacity, count = state.waiting.shape[1], state.waiting_count[r]
    at = count
    while at > 0 and state.available_s[waiting_at(state, r, at - 1)] > state.available_s[request]:
        state.waiting[r, (state.waiting_head[r] + at) % capacity] = waiting_at(state, r, at - 1)
        at -= 1
    state.waiting[r, (state.waiting_head[r] + at) % capacity] = request
    state.waiting_count[r] = count + 1


@njit(cache=True)
def _abort_migration(state, request):
    """Give up ``request``'s copy (it finished or was preempted at the source, or the destination lacks blocks)."""
    dst = state.migrate_to[request]
    state.free_blocks[dst] += state.migrate_blocks[request]
    state.migrate_blocks[request] = 0
    state.migrate_to[request] = -1
    state.outgoing[state.replica[request]] -= 1
    state.incoming[dst] -= 1
    state.counts[MIGRATION_ABORTS] += 1


@njit(cache=True)
def _hand_over(tables, state, request, at_s):
    """``request``'s copy is complete and its source stopped at ``at_s``: it joins ``dst``'s running batch with
    its KV cache (the blocks its tokens grew into during the copy are taken then; short of them, it stays)."""
    src, dst = state.replica[request], state.migrate_to[request]
    needed = _blocks_for(state.kv_tokens[request] + 1, tables.block_tokens[dst])
    extra = needed - state.migrate_blocks[request]
    if extra > state.free_blocks[dst]:
        _abort_migration(state, request)
        return
    state.free_blocks[dst] -= extra
    state.migrate_to[request] = -1
    state.migrate_blocks[request] = 0
    state.outgoing[src] -= 1
    state.incoming[dst] -= 1
    _remove_running(state, src, request)
    state.free_blocks[src] += state.blocks[request]
    state.blocks[request] = needed
    state.replica[request] = dst
    state.running[dst, state.running_count[dst]] = request
    state.running_count[dst] += 1
    for r in (src, dst):  # both batches changed
        state.run_steps[r] = 0
        state.run_done[r] = 0
    state.clock_s[dst] = max(state.clock_s[dst], at_s)
    state.counts[MIGRATED] += 1


@njit(cache=True)
def _next_copy(tables, state, time_s):
    """The request whose KV copy completes first (-1: none in flight), leaving out those whose source's boundary
    after the copy is already past ``time_s``."""
    best, best_s = -1, np.inf
    for r in range(tables.config[N_REPLICAS]):
        if state.outgoing[r] == 0:
            continue
        for k in range(state.running_count[r]):
            request = state.running[r, k]
            done_s = state.migrate_done_s[request]
            if state.migrate_to[request] >= 0 and done_s < best_s and not (state.clock_s[r] > time_s and state.clock_s[r] >= done_s):
                best, best_s = request, done_s
    return best


@njit(cache=True)
def complete_migrations(tables, state, time_s, chunks, decodes, released):
    """Hand over every copy that completes before ``time_s``, in completion order: its source runs to its first
    iteration boundary after the copy completes, every other replica to that boundary, and the request moves (a
    boundary past ``time_s`` waits for a later call)."""
    while True:
        request = _next_copy(tables, state, time_s)
        if request < 0 or state.migrate_done_s[request] >= time_s:
            return
        src = state.replica[request]
        while state.migrate_to[request] >= 0 and state.clock_s[src] < state.migrate_done_s[request]:
            iterate(tables, state, src, chunks, decodes, released)
        if state.migrate_to[request] < 0:
            continue  # it finished or was preempted during the copy
        boundary_s = state.clock_s[src]
        if boundary_s > time_s:
            continue  # handed over by a later call
        for r in range(tables.config[N_REPLICAS]):
            if r != src:
                _advance_replica(tables, state, r, boundary_s, chunks, decodes, released)
        _hand_over(tables, state, request, boundary_s)


@njit(cache=True)
def run_replica(tables, state, r, until_first_token_of, chunks, decodes, released):
    """Serve replica ``r``'s routed requests as if none arrived after them: to their end, or until request
    ``until_first_token_of`` (-1: none) has its first token."""
    while state.running_count[r] > 0 or state.waiting_count[r] > 0:
        if until_first_token_of >= 0 and not np.isnan(state.first_token_s[until_first_token_of]):
            return
        if not _serve_once(tables, state, r, np.inf, chunks, decodes, released):
            return  # a blocked prefill replica: the decode replicas must run first (see :func:`run_to_completion`)


#: Seconds per step of :func:`run_to_completion` on a disaggregated cluster.
DRAIN_STEP_S = 0.01


@njit(cache=True)
def run_to_completion(tables, state, chunks, decodes, released):
    """Serve every routed request to its end: each replica on its own, or, where prefill replicas hand requests
    to decode replicas, every replica together in steps of ``DRAIN_STEP_S``."""
    complete_migrations(tables, state, np.inf, chunks, decodes, released)
    disaggregated = False
    for r in range(tables.config[N_REPLICAS]):
        disaggregated |= tables.role[r] != ROLE_MIXED
    if disaggregated:
        time_s = state.clock_s.min()
        while state.counts[FINISHED] < state.counts[ROUTED]:
            time_s += DRAIN_STEP_S
            advance_to(tables, state, time_s, chunks, decodes, released)
    for r in tables.advance_order:
        run_replica(tables, state, r, -1, chunks, decodes, released)


@njit(cache=True)
def time_in_system_s(tables, state, now_s):
    """Seconds the routed requests spent in the system between the last call (or the first arrival) and ``now_s``,
    summed; requests that left are then forgotten."""
    total, kept = 0.0, 0
    last_s = state.reward_clock_s[0]
    for k in range(state.counts[N_ALIVE]):
        request = state.alive[k]
        left_s = state.finish_s[request]
        if np.isnan(left_s):
            left_s = np.inf
        total += max(min(left_s, now_s) - max(tables.arrival_s[request], last_s), 0.0)
        if not left_s <= now_s:
            state.alive[kept] = request
            kept += 1
    state.counts[N_ALIVE] = kept
    state.reward_clock_s[0] = now_s
    return total


# ---------------------------------------------------------------------------------------------------- batches
@njit(cache=True)
def step_route(tables, state, replica, chunks, decodes, released):
    """Route the next request to ``replica``, then serve up to the next arrival (or everything, after the last).
    Returns minus the time in the system since the previous arrival, per request of the workload (the env's
    reward)."""
    n = tables.config[N_REQUESTS]
    route(tables, state, state.counts[ROUTED], replica)
    if state.counts[ROUTED] == n:
        run_to_completion(tables, state, chunks, decodes, released)
        now_s = np.inf
    else:
        now_s = tables.arrival_s[state.counts[ROUTED]]
        advance_to(tables, state, now_s, chunks, decodes, released)
    return -time_in_system_s(tables, state, now_s) / n
