"""The serving simulator: N model replicas, each batching continuously at the iteration level (vLLM / Sarathi-Serve
style), and a router that sends every arriving request to one of them.

Per replica, every iteration:

1. *Admission*: waiting requests that have arrived are admitted first-come first-served while the running batch is
   below ``max_batch`` and the KV cache has blocks (``block_tokens`` tokens each) for the whole prompt; with the
   prefix cache on, the prompt's leading blocks found in the replica's cache (LRU, keyed by the trace's prefix ids)
   need no prefill.
2. *Batch*: every running request past its prefill decodes one token; a decode that needs a new KV block when none
   is free preempts the most recently admitted request (recompute: its blocks are freed and it waits again at the
   head of the queue, to prefill prompt + generated tokens anew). The rest of the per-iteration token budget
   (``token_budget``) goes to prefill chunks of the admitted requests in admission order (chunked prefill).
3. *Time*: :class:`LatencyProfile` gives the duration for (prefill tokens, decode batch, mean context), divided by
   the replica's ``speed``; or an :class:`IterationExecutor` runs the batch (on a model, say) and says how long it
   took. At its end a request whose prefill completes emits its first token, decodes emit one, and finished
   requests free their blocks (their prefix blocks stay cached).

Routing happens at arrivals: :meth:`ServingSimulator.advance_to` runs every replica's iterations that start before
the arrival (an iteration in flight is run to its end, and a request is only admitted by iterations that start
after it arrived), then :meth:`route` queues the request.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from schedgym.envs.llmrouting.profile import LatencyProfile
from schedgym.envs.llmrouting.workload import Workload


@dataclass(frozen=True)
class ReplicaSpec:
    """One model replica.

    Attributes:
        speed: iteration-time divisor (2.0 = twice as fast as the profile).
        kv_blocks: KV-cache capacity in blocks.
        block_tokens: tokens per KV block.
        token_budget: tokens per iteration (decodes count one each; the rest is prefill chunks).
        max_batch: most requests running at once.
        prefix_cache: whether finished requests' prefix blocks are cached for later requests.
    """

    speed: float = 1.0
    kv_blocks: int = 8192
    block_tokens: int = 16
    token_budget: int = 2048
    max_batch: int = 256
    prefix_cache: bool = True


class IterationExecutor(Protocol):
    """Runs the iterations the simulator decides and measures them: the simulator keeps every decision (admission,
    chunks, decodes, preemption, prefix hits) and only asks for each iteration's duration."""

    def run_iteration(self, replica: int, chunks: np.ndarray, decodes: np.ndarray) -> float:
        """Run one iteration of ``replica``; returns its duration in seconds.

        Args:
            chunks: int ``[n_chunks, 3]``: (request, first token position, tokens) of each prefill chunk; the chunk
                attends to the request's first ``position`` cached tokens and causally to itself.
            decodes: int ``[n_decodes, 2]``: (request, context tokens) of each decode; the new token is at
                position ``context``.
        """
        ...

    def release(self, replica: int, request: int) -> None:
        """``request`` finished or was preempted at ``replica``: its KV cache is freed."""
        ...


@dataclass
class DecodeRun:
    """A run of identical decode-only iterations of one replica, planned at its start and served in parts, up to
    each arrival that interrupts it.

    Attributes:
        requests: ``[batch]`` the decoding requests, in admission order.
        starts_s, ends_s: ``[steps]`` start and end of each iteration of the run (seconds).
        done: iterations of the run served so far.
    """

    requests: np.ndarray
    starts_s: np.ndarray
    ends_s: np.ndarray
    done: int = 0


class Replica:
    """The state of one replica; request data lives in the simulator's arrays."""

    def __init__(self, spec: ReplicaSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self.clock_s = 0.0  # end of the last iteration
        self.waiting: deque[int] = deque()
        self.running: list[int] = []  # admission order
        self.free_blocks = spec.kv_blocks
        self.cache: OrderedDict[int, None] = OrderedDict()  # prefix id -> (LRU order)
        self.iterations = 0
        self.decode_run: DecodeRun | None = None  # the run in progress; any other iteration or a finish ends it


class ServingSimulator:
    """N replicas serving one workload.

    Per-request arrays (``[n_requests]``): ``replica`` (-1 until routed), ``prefill_target`` (tokens to prefill:
    the prompt, plus generated tokens after a preemption), ``prefilled``, ``generated``, ``kv_tokens`` (tokens in
    its KV cache), ``blocks``,
    ``prefix_hit_tokens``, ``first_token_s`` and ``finish_s`` (NaN until known), ``preemptions``.

    With an ``executor`` each iteration lasts what the executor measured for it (the profile is not used for
    time), so a replica's ``clock_s`` is advanced by the measured time of its own iterations; such replicas must
    have speed 1.0.
    """

    def __init__(self, workload: Workload, replicas: list[ReplicaSpec], profile: LatencyProfile, executor: IterationExecutor | None = None) -> None:
        if not replicas:
            raise ValueError("need at least one replica")
        if executor is not None and any(spec.speed != 1.0 for spec in replicas):
            raise ValueError(f"an iteration executor measures real iterations, so every replica needs speed 1.0 (got {[spec.speed for spec in replicas]})")
        self.workload = workload
        self.profile = profile
        self.executor = executor
        self.replicas = [Replica(spec, index) for index, spec in enumerate(replicas)]
        n = workload.n_requests
        too_big = [r for r, spec in enumerate(replicas) if self._blocks_for(int(workload.prompt_tokens.max() + workload.output_tokens.max()), spec) > spec.kv_blocks]
        if too_big:
            raise ValueError(f"replicas {too_big} cannot hold the longest request of {workload.name} in their KV cache; raise kv_blocks")
        self.replica = np.full(n, -1, dtype=np.int64)
        self.prefill_target = workload.prompt_tokens.astype(np.int64).copy()
        self.prefilled = np.zeros(n, dtype=np.int64)
        self.generated = np.zeros(n, dtype=np.int64)
        self.kv_tokens = np.zeros(n, dtype=np.int64)
        self.blocks = np.zeros(n, dtype=np.int64)
        self.prefix_hit_tokens = np.zeros(n, dtype=np.int64)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.n_routed = 0
        self.n_finished = 0

    # ------------------------------------------------------------------------------------------------ routing
    def advance_to(self, time_s: float) -> None:
        """Run every replica's iterations that start before ``time_s``."""
        for replica in self.replicas:
            while replica.clock_s < time_s and self._has_work(replica, replica.clock_s):
                if not self._decode_run(replica, time_s):
                    self._iterate(replica)
            if not self._has_work(replica, time_s):
                replica.clock_s = max(replica.clock_s, time_s)

    def route(self, request: int, replica: int) -> None:
        """Queue ``request`` at ``replica`` (requests must be routed in arrival order)."""
        if request != self.n_routed:
            raise ValueError(f"request {request} routed out of order; route request {self.n_routed} next")
        if not 0 <= replica < len(self.replicas):
            raise ValueError(f"replica {replica} does not exist; choose one of 0..{len(self.replicas) - 1}")
        self.replica[request] = replica
        self.replicas[replica].waiting.append(request)
        self.n_routed += 1

    def run_to_completion(self) -> None:
        """Serve every routed request to its end."""
        for replica in range(len(self.replicas)):
            self.run_replica(replica)

    def run_replica(self, replica: int, until_first_token_of: int | None = None) -> None:
        """Serve the requests routed to ``replica`` as if none arrived after them: to their end, or until request
        ``until_first_token_of`` (routed there) has its first token. The other replicas stay where they are, so on
        a copy of the simulator this looks ahead at what a routing would cost."""
        rep = self.replicas[replica]
        while rep.running or rep.waiting:
            if until_first_token_of is not None and not np.isnan(self.first_token_s[until_first_token_of]):
                return
            if not self._decode_run(rep, np.inf):
                self._iterate(rep)

    @property
    def done(self) -> bool:
        return self.n_finished == self.workload.n_requests

    # ------------------------------------------------------------------------------------------------ queries
    def prefix_hit_tokens_at(self, replica: int, request: int) -> int:
        """Prompt tokens of ``request`` found in ``replica``'s prefix cache now."""
        ids = self.workload.prefix_ids
        rep = self.replicas[replica]
        if ids is None or not rep.spec.prefix_cache:
            return 0
        hits = 0
        for block in ids[request]:
            if block not in rep.cache:
                break
            hits += 1
        return min(hits * self.workload.prefix_block_tokens, int(self.workload.prompt_tokens[request]) - 1)

    def pending_prefill_tokens(self, replica: int) -> int:
        """Prefill tokens still to compute at ``replica`` (waiting prompts and unfinished prefills)."""
        rep = self.replicas[replica]
        waiting = sum(int(self.prefill_target[r]) for r in rep.waiting)
        running = sum(int(self.prefill_target[r] - self.prefilled[r]) for r in rep.running)
        return waiting + running

    def decode_batch(self, replica: int) -> int:
        rep = self.replicas[replica]
        return sum(1 for r in rep.running if self.prefilled[r] >= self.prefill_target[r])

    # ------------------------------------------------------------------------------------------------ internals
    @staticmethod
    def _blocks_for(tokens: int, spec: ReplicaSpec) -> int:
        return -(-tokens // spec.block_tokens)

    def _has_work(self, replica: Replica, at_s: float) -> bool:
        return bool(replica.running) or (bool(replica.waiting) and self.workload.arrival_s[replica.waiting[0]] <= max(at_s, replica.clock_s))

    def _admit(self, replica: Replica, start_s: float) -> None:
        spec = replica.spec
        arrival = self.workload.arrival_s
        while replica.waiting and len(replica.running) < spec.max_batch and arrival[replica.waiting[0]] <= start_s:
            request = replica.waiting[0]
            needed = self._blocks_for(int(self.prefill_target[request]) + 1, spec)
            if needed > replica.free_blocks:
                break
            replica.waiting.popleft()
            replica.free_blocks -= needed
            self.blocks[request] = needed
            hit = self.prefix_hit_tokens_at(self.replica[request], request) if self.generated[request] == 0 else 0
            self.prefix_hit_tokens[request] = max(self.prefix_hit_tokens[request], hit)
            self.prefilled[request] = hit
            self.kv_tokens[request] = hit
            if hit:
                for block in self.workload.prefix_ids[request][: hit // self.workload.prefix_block_tokens]:
                    replica.cache.move_to_end(block)
            replica.running.append(request)

    def _preempt_last(self, replica: Replica) -> None:
        victim = replica.running.pop()
        replica.free_blocks += int(self.blocks[victim])
        self.blocks[victim] = 0
        self.prefill_target[victim] = int(self.workload.prompt_tokens[victim]) + int(self.generated[victim])
        self.prefilled[victim] = 0
        self.kv_tokens[victim] = 0
        self.preemptions[victim] += 1
        replica.waiting.appendleft(victim)
        if self.executor is not None:
            self.executor.release(replica.index, victim)

    def _iterate(self, replica: Replica) -> None:
        """Run one iteration of ``replica`` from its clock (or the first waiting arrival, if later)."""
        replica.decode_run = None
        spec = replica.spec
        start_s = replica.clock_s
        if not replica.running and replica.waiting:
            start_s = max(start_s, float(self.workload.arrival_s[replica.waiting[0]]))
        self._admit(replica, start_s)
        decodes = self._reserve_decode_blocks(replica)
        running = np.array(replica.running, dtype=np.int64)
        remaining = self.prefill_target[running] - self.prefilled[running]
        prefilling, remaining = running[remaining > 0], remaining[remaining > 0]
        budget = spec.token_budget - len(decodes)
        chunks = np.maximum(np.minimum(remaining, budget - (np.cumsum(remaining) - remaining)), 0)
        prefilling, chunks = prefilling[chunks > 0], chunks[chunks > 0]
        if not len(decodes) and not len(prefilling):
            replica.clock_s = start_s
            return
        if self.executor is None:
            mean_context = float(self.kv_tokens[decodes].sum()) / len(decodes) if len(decodes) else 0.0
            end_s = start_s + self.profile.iteration_time_s(int(chunks.sum()), len(decodes), mean_context) / spec.speed
        else:
            batch_chunks = np.stack((prefilling, self.prefilled[prefilling], chunks), axis=1)
            end_s = start_s + self.executor.run_iteration(replica.index, batch_chunks, np.stack((decodes, self.kv_tokens[decodes]), axis=1))
        replica.iterations += 1
        self.prefilled[prefilling] += chunks
        self.kv_tokens[prefilling] += chunks
        first = prefilling[(self.prefilled[prefilling] >= self.prefill_target[prefilling]) & (self.generated[prefilling] == 0)]
        self.generated[first] = 1
        self.first_token_s[first] = end_s
        self.generated[decodes] += 1
        self.kv_tokens[decodes] += 1
        output = self.workload.output_tokens
        finished = first[output[first] <= 1].tolist() + decodes[self.generated[decodes] >= output[decodes]].tolist()
        for request in finished:
            self._finish(replica, request, end_s)
        replica.clock_s = end_s

    def _reserve_decode_blocks(self, replica: Replica) -> np.ndarray:
        """The running requests past their prefill, each holding a KV block for its next token; a request that
        needs a new block when none is free preempts the most recently admitted one (possibly itself)."""
        spec = replica.spec
        running = np.array(replica.running, dtype=np.int64)
        decoding = running[self.prefilled[running] >= self.prefill_target[running]]
        needs = -(-(self.kv_tokens[decoding] + 1) // spec.block_tokens) > self.blocks[decoding]
        if needs.sum() <= replica.free_blocks:
            self.blocks[decoding[needs]] += 1
            replica.free_blocks -= int(needs.sum())
            return decoding
        decodes: list[int] = []
        for request in decoding.tolist():
            if request not in replica.running:
                continue  # preempted by an earlier request of this iteration
            if self._blocks_for(int(self.kv_tokens[request]) + 1, spec) > self.blocks[request]:
                while replica.free_blocks == 0 and replica.running[-1] != request:
                    self._preempt_last(replica)
                if replica.free_blocks == 0:
                    self._preempt_last(replica)  # the request itself was the last admitted
                    continue
                replica.free_blocks -= 1
                self.blocks[request] += 1
            decodes.append(request)
        return np.array(decodes, dtype=np.int64)

    def _decode_run(self, replica: Replica, until_s: float) -> bool:
        """Fast-forward a run of identical decode-only iterations (nothing to admit or prefill, enough free blocks,
        no request finishing before the last) that start before ``until_s``; False if the next iteration is not
        such a one (run it with :meth:`_iterate`). The run is planned once (:class:`DecodeRun`) and served in parts
        up to each ``until_s``. The result equals iterating one by one. With an executor every iteration is run on
        its own."""
        spec = replica.spec
        running = replica.running
        if self.executor is not None or not running or (replica.waiting and self.workload.arrival_s[replica.waiting[0]] <= replica.clock_s and len(running) < spec.max_batch):
            return False
        run = replica.decode_run or self._plan_decode_run(replica)
        if run is None:
            return False
        batch = run.requests
        steps = max(1, int(np.searchsorted(run.starts_s[run.done :], until_s, side="left")))
        self.generated[batch] += steps
        self.kv_tokens[batch] += steps
        needed = -(-self.kv_tokens[batch] // spec.block_tokens)
        replica.free_blocks -= int(np.maximum(needed - self.blocks[batch], 0).sum())
        self.blocks[batch] = np.maximum(self.blocks[batch], needed)
        run.done += steps
        replica.clock_s = float(run.ends_s[run.done - 1])
        replica.iterations += steps
        replica.decode_run = run if run.done < len(run.ends_s) else None
        for request in batch[self.generated[batch] >= self.workload.output_tokens[batch]].tolist():
            self._finish(replica, request, replica.clock_s)
        return True

    def _plan_decode_run(self, replica: Replica) -> DecodeRun | None:
        """The decode-only run ``replica``'s batch can go on with from its clock: until its first request finishes,
        shortened until its new KV blocks fit; None if it is not at least 2 iterations (or a request still
        prefills)."""
        spec = replica.spec
        batch = np.array(replica.running)
        if (self.prefilled[batch] < self.prefill_target[batch]).any():
            return None
        steps = int((self.workload.output_tokens[batch] - self.generated[batch]).min())
        kv = self.kv_tokens[batch]
        for _ in range(2):  # shorten the run until its new KV blocks fit
            extra = np.maximum(-(-(kv + steps) // spec.block_tokens) - self.blocks[batch], 0).sum()
            if extra <= replica.free_blocks:
                break
            steps = max(1, steps // 4)
        else:
            return None
        if steps < 2:
            return None
        durations = self.profile.decode_times_s(len(batch), kv.mean() + np.arange(steps)) / spec.speed
        ends = replica.clock_s + np.cumsum(durations)
        return DecodeRun(requests=batch, starts_s=ends - durations, ends_s=ends)

    def _finish(self, replica: Replica, request: int, end_s: float) -> None:
        """``request`` produced its last token at ``end_s``: it leaves the batch and frees its blocks."""
        replica.decode_run = None
        self.finish_s[request] = end_s
        replica.running.remove(request)
        replica.free_blocks += int(self.blocks[request])
        self.blocks[request] = 0
        self.n_finished += 1
        if replica.spec.prefix_cache and self.workload.prefix_ids is not None:
            self._cache_prefix(replica, request)
        if self.executor is not None:
            self.executor.release(replica.index, request)

    def _cache_prefix(self, replica: Replica, request: int) -> None:
        """Remember the request's prefix blocks (most recent last), keeping at most ``kv_blocks`` of them (LRU)."""
        for block in self.workload.prefix_ids[request]:
            replica.cache[block] = None
            replica.cache.move_to_end(block)
        capacity = replica.spec.kv_blocks * replica.spec.block_tokens // self.workload.prefix_block_tokens
        while len(replica.cache) > capacity:
            replica.cache.popitem(last=False)
