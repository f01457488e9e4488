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

Disaggregation (DistServe): a ``"prefill"`` replica's request, at its first token, leaves the batch and waits at a
``"decode"`` replica (the router's choice, else the one with the most free blocks after its queue) while its KV
blocks stay where they are; when the decode replica admits it (first come first served, as memory allows) the KV
cache is pulled over the link, the prefill replica frees its blocks, and the request decodes from the first
iteration that starts after ``latency + KV bytes / bandwidth``.

Migration (Llumnix's live migration), when the simulator allows it: :meth:`migrate` moves a
waiting request to another replica's queue at once (placed by arrival), or starts copying a decoding request's KV
cache to another replica while its source keeps decoding it; when the copy (``latency + KV bytes / bandwidth``) completes, the
request leaves its source at the next iteration boundary and joins the destination's running batch with its KV
cache (no recompute). The destination holds the blocks and a batch slot from the start of the copy.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from schedgym.envs.llmrouting import kernels
from schedgym.envs.llmrouting.profile import LatencyProfile
from schedgym.envs.llmrouting.workload import Workload


@dataclass(frozen=True)
class MigrationLink:
    """The link a migrated request's KV cache is copied over.

    Attributes:
        bandwidth_bytes_per_s: bytes per second, one direction.
        latency_s: seconds before the first byte arrives.
    """

    bandwidth_bytes_per_s: float
    latency_s: float

    def __post_init__(self) -> None:
        if not (self.bandwidth_bytes_per_s > 0 and self.latency_s >= 0):
            raise ValueError(f"a migration link needs bandwidth > 0 and latency >= 0, got {self.bandwidth_bytes_per_s} B/s and {self.latency_s} s")


#: Links by name (one direction, datasheet rates): NVLink 4 between H100s in one node (900 GB/s both ways), PCIe
#: 5.0 x16 (64 GB/s), a 100 Gb/s network (Llumnix's setting: instances on different hosts).
LINKS = {
    "nvlink": MigrationLink(450e9, 5e-6),
    "pcie": MigrationLink(64e9, 10e-6),
    "network": MigrationLink(12.5e9, 50e-6),
}


#: Seconds between rebalancing points, where routers that migrate may move a request (Llumnix's global scheduler
#: polls its instances at this order of interval).
REBALANCE_INTERVAL_S = 0.1


def rebalance_points(origin_s: float, after_s: float, before_s: float, interval_s: float = REBALANCE_INTERVAL_S) -> np.ndarray:
    """float ``[k]``: the rebalancing points ``origin_s + j * interval_s`` strictly between ``after_s`` and
    ``before_s`` (seconds), ascending."""
    first = math.floor((after_s - origin_s) / interval_s) + 1
    points = origin_s + interval_s * np.arange(first, max(first, math.ceil((before_s - origin_s) / interval_s)))
    return points[(points > after_s) & (points < before_s)]


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
        profile: its iteration times (a heterogeneous cluster gives its replicas different ones), or None: the
            simulation's profile.
        role: ``"mixed"`` (prefills and decodes), ``"prefill"`` (prefills only: after the first token a request's
            KV cache goes to a decode replica) or ``"decode"`` (takes no arrivals; decodes what prefill replicas
            hand it): disaggregated serving, as DistServe.
    """

    speed: float = 1.0
    kv_blocks: int = 8192
    block_tokens: int = 16
    token_budget: int = 2048
    max_batch: int = 256
    prefix_cache: bool = True
    profile: LatencyProfile | None = field(default=None, repr=False)
    role: str = "mixed"

    def __post_init__(self) -> None:
        if self.role not in kernels.ROLES:
            raise ValueError(f"unknown replica role {self.role!r}; choose one of {', '.join(kernels.ROLES)}")

    def profile_or(self, default: LatencyProfile) -> LatencyProfile:
        """The profile that times this replica in a simulation whose profile is ``default``."""
        return default if self.profile is None else self.profile


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


class ReplicaView:
    """One replica of a :class:`ServingSimulator`, read from the simulator's state arrays.

    Attributes:
        spec: its :class:`ReplicaSpec`; index: its position.
    """

    def __init__(self, sim: ServingSimulator, index: int) -> None:
        self._sim, self.index, self.spec = sim, index, sim.specs[index]

    @property
    def waiting(self) -> np.ndarray:
        """int ``[w]``: the queued requests, head first."""
        state, r = self._sim.state, self.index
        count, capacity = int(state.waiting_count[r]), state.waiting.shape[1]
        return state.waiting[r, (state.waiting_head[r] + np.arange(count)) % capacity]

    @property
    def running(self) -> np.ndarray:
        """int ``[b]``: the running batch, in admission order."""
        return self._sim.state.running[self.index, : self._sim.state.running_count[self.index]]

    @property
    def free_blocks(self) -> int:
        return int(self._sim.state.free_blocks[self.index])

    @property
    def clock_s(self) -> float:
        """End of its last iteration."""
        return float(self._sim.state.clock_s[self.index])

    @property
    def iterations(self) -> int:
        return int(self._sim.state.iterations[self.index])


class ServingSimulator:
    """N replicas serving one workload; the state lives in the arrays of
    :class:`~schedgym.envs.llmrouting.kernels.ServingState` (``state``), advanced by the compiled kernels of
    :mod:`schedgym.envs.llmrouting.kernels`.

    Per-request arrays (``[n_requests]``, views of ``state``): ``replica`` (-1 until routed), ``prefill_target``
    (tokens to prefill: the prompt, plus generated tokens after a preemption), ``prefilled``, ``generated``,
    ``kv_tokens`` (tokens in its KV cache), ``blocks``, ``prefix_hit_tokens``, ``first_token_s`` and ``finish_s``
    (NaN until known), ``preemptions``.

    With an ``executor`` each iteration lasts what the executor measured for it (the profile is not used for
    time), so a replica's ``clock_s`` is advanced by the measured time of its own iterations; such replicas must
    have speed 1.0. ``fast_forward=False`` steps every decode iteration one by one (the runs' check). ``link``:
    the :class:`MigrationLink` KV caches are copied over (by migrations and from prefill to decode replicas);
    ``migration``: whether :meth:`migrate` may move requests.
    """

    def __init__(
        self, workload: Workload, replicas: list[ReplicaSpec], profile: LatencyProfile, executor: IterationExecutor | None = None,
        fast_forward: bool = True, link: MigrationLink | None = None, migration: bool = False,
    ) -> None:
        if not replicas:
            raise ValueError("need at least one replica")
        if executor is not None and any(spec.speed != 1.0 for spec in replicas):
            raise ValueError(f"an iteration executor measures real iterations, so every replica needs speed 1.0 (got {[spec.speed for spec in replicas]})")
        longest = int(workload.prompt_tokens.max() + workload.output_tokens.max())
        too_big = [r for r, spec in enumerate(replicas) if -(-longest // spec.block_tokens) > spec.kv_blocks]
        if too_big:
            raise ValueError(f"replicas {too_big} cannot hold the longest request of {workload.name} in their KV cache; raise kv_blocks")
        self.workload = workload
        self.profile = profile
        self.executor = executor
        roles = [spec.role for spec in replicas]
        disaggregated = "prefill" in roles or "decode" in roles
        if executor is not None and (migration or disaggregated):
            raise ValueError("an iteration executor cannot move KV caches between replicas; serve without migration and with mixed replicas")
        if (migration or disaggregated) and link is None:
            raise ValueError("migration and prefill/decode replicas copy KV caches: give a link (e.g. LINKS['nvlink'])")
        if disaggregated and not ("prefill" in roles and "decode" in roles):
            raise ValueError(f"a disaggregated cluster needs both prefill and decode replicas, got roles {roles}")
        self.specs = list(replicas)
        self.link = link if (migration or disaggregated) else None
        self.migration = bool(migration)
        self.tables = kernels.build_tables(workload, self.specs, profile, fast_forward, self.link, self.migration)
        self.state = kernels.allocate_state(self.tables)
        state = self.state
        self.replica, self.prefill_target, self.prefilled, self.generated = state.replica, state.prefill_target, state.prefilled, state.generated
        self.kv_tokens, self.blocks, self.prefix_hit_tokens = state.kv_tokens, state.blocks, state.prefix_hit_tokens
        self.first_token_s, self.finish_s, self.preemptions = state.first_token_s, state.finish_s, state.preemptions
        self.kernel_args = kernels.kernel_refs(self.tables, state)  # (tables, state) as the kernels take them
        self.replicas = [ReplicaView(self, index) for index in range(len(replicas))]
        batch = int(self.tables.max_batch.max())
        self._chunks = np.zeros((batch, 3), dtype=np.int64)  # scratch of one iteration
        self._decodes = np.zeros(batch, dtype=np.int64)
        self._released = np.zeros(batch, dtype=np.int64)

    @property
    def n_routed(self) -> int:
        return int(self.state.counts[kernels.ROUTED])

    @property
    def n_finished(self) -> int:
        return int(self.state.counts[kernels.FINISHED])

    # ------------------------------------------------------------------------------------------------ routing
    def advance_to(self, time_s: float) -> None:
        """Run every replica's iterations that start before ``time_s``."""
        if self.executor is None:
            kernels.advance_to(*self.kernel_args, time_s, *self._scratch())
            return
        for r in range(len(self.replicas)):
            while self.state.clock_s[r] < time_s and kernels.has_work(*self.kernel_args, r, self.state.clock_s[r]):
                self._iterate_with_executor(r)
            if not kernels.has_work(*self.kernel_args, r, time_s):
                self.state.clock_s[r] = max(self.state.clock_s[r], time_s)

    @property
    def arrival_replicas(self) -> np.ndarray:
        """int ``[k]``: the replicas arrivals may be routed to (all but decode replicas)."""
        return np.flatnonzero(self.tables.role != kernels.ROLE_DECODE)

    def route(self, request: int, replica: int, decode_replica: int | None = None) -> None:
        """Queue ``request`` at ``replica`` (requests must be routed in arrival order); at a prefill replica,
        ``decode_replica`` is where it decodes (None: the least loaded decode replica at its first token)."""
        if request != self.n_routed:
            raise ValueError(f"request {request} routed out of order; route request {self.n_routed} next")
        self._check_arrival_replica(replica)
        if decode_replica is not None:
            if self.specs[replica].role != "prefill" or not 0 <= decode_replica < len(self.replicas) or self.specs[decode_replica].role != "decode":
                raise ValueError(f"decode_replica {decode_replica} is for a request routed to a prefill replica, and must be a decode replica "
                                 f"({np.flatnonzero(self.tables.role == kernels.ROLE_DECODE).tolist()})")
            self.state.decode_to[request] = decode_replica
        kernels.route(*self.kernel_args, request, replica)

    def _check_arrival_replica(self, replica: int) -> None:
        if not 0 <= replica < len(self.replicas):
            raise ValueError(f"replica {replica} does not exist; choose one of 0..{len(self.replicas) - 1}")
        if self.specs[replica].role == "decode":
            raise ValueError(f"replica {replica} is a decode replica and takes no arrivals; route to one of {self.arrival_replicas.tolist()}")

    def route_next(self, replica: int) -> float:
        """Route the next request (in arrival order) to ``replica``, then serve up to the next arrival (everything,
        after the last one). Returns minus the seconds the routed requests spent in the system since the previous
        arrival, divided by the workload's requests: ``LlmRoutingEnv``'s reward, summing to minus the mean
        end-to-end latency.

        Raises:
            ValueError: if the replica does not exist, every request is routed, or an executor runs the iterations
                (step it with :meth:`route` and :meth:`advance_to`).
        """
        if self.executor is not None:
            raise ValueError("route_next serves with the latency profile; with an executor use route() and advance_to()")
        if self.n_routed == self.workload.n_requests:
            raise ValueError(f"all {self.n_routed} requests are routed already")
        self._check_arrival_replica(replica)
        return float(kernels.step_route(*self.kernel_args, replica, *self._scratch()))

    def run_to_completion(self) -> None:
        """Serve every routed request to its end (handing over the migrations in flight first; prefill replicas
        before decode replicas)."""
        if self.executor is None:
            kernels.run_to_completion(*self.kernel_args, *self._scratch())
            return
        for replica in range(len(self.replicas)):
            self.run_replica(replica)

    # ------------------------------------------------------------------------------------------------ migration
    def migration_candidate(self, source: int, destination: int, queued: bool = False) -> int | None:
        """The request a migration from ``source`` to ``destination`` would move now (``queued``: the newest
        waiting one, else the decoding one with the fewest KV tokens), or None if none can (see
        :func:`~schedgym.envs.llmrouting.kernels.migration_candidate`)."""
        request = int(kernels.migration_candidate(*self.kernel_args, source, destination, queued))
        return None if request < 0 else request

    def migrate(self, source: int, destination: int, now_s: float, queued: bool = False) -> int:
        """Migrate the :meth:`migration_candidate` of ``source`` to ``destination`` at ``now_s`` (the simulator
        advanced to it). Returns the request.

        Raises:
            ValueError: if the simulator has no link, a replica does not exist, or nothing can move.
        """
        if not self.migration:
            raise ValueError("this simulator does not allow migration; build it with migration=True and a link (e.g. LINKS['network'])")
        for replica in (source, destination):
            if not 0 <= replica < len(self.replicas):
                raise ValueError(f"replica {replica} does not exist; choose one of 0..{len(self.replicas) - 1}")
        request = self.migration_candidate(source, destination, queued)
        if request is None:
            what = "no request waits at the source" if queued else "no decoding request at the source that the destination has a batch slot and blocks for"
            raise ValueError(f"nothing can migrate from replica {source} to {destination} now: {what}")
        kernels.start_migration(*self.kernel_args, request, destination, now_s)
        return request

    def take_time_in_system_s(self, now_s: float) -> float:
        """Seconds the routed requests spent in the system between the previous call (or the first arrival) and
        ``now_s``, summed (the reward of ``LlmRoutingEnv``, before dividing by the requests)."""
        return float(kernels.time_in_system_s(*self.kernel_args, now_s))

    @property
    def migration_counts(self) -> dict[str, int]:
        """Migrations started, completed (handed over or moved queue) and aborted so far."""
        counts = self.state.counts
        return {"started": int(counts[kernels.MIGRATIONS]), "completed": int(counts[kernels.MIGRATED]), "aborted": int(counts[kernels.MIGRATION_ABORTS])}

    def run_replica(self, replica: int, until_first_token_of: int | None = None) -> None:
        """Serve the requests routed to ``replica`` as if none arrived after them: to their end, or until request
        ``until_first_token_of`` (routed there) has its first token. The other replicas stay where they are, so on
        a copy of the simulator this looks ahead at what a routing would cost."""
        target = -1 if until_first_token_of is None else int(until_first_token_of)
        if self.executor is None:
            kernels.run_replica(*self.kernel_args, replica, target, *self._scratch())
            return
        state = self.state
        while state.running_count[replica] or state.waiting_count[replica]:
            if target >= 0 and not np.isnan(state.first_token_s[target]):
                return
            self._iterate_with_executor(replica)

    @property
    def done(self) -> bool:
        return self.n_finished == self.workload.n_requests

    # ------------------------------------------------------------------------------------------------ queries
    def prefix_hit_tokens_at(self, replica: int, request: int) -> int:
        """Prompt tokens of ``request`` found in ``replica``'s prefix cache now."""
        return int(kernels.prefix_hit_tokens_at(*self.kernel_args, replica, request))

    def pending_prefill_tokens(self, replica: int) -> int:
        """Prefill tokens still to compute at ``replica`` (waiting prompts and unfinished prefills)."""
        return int(kernels.pending_prefill_tokens(self.kernel_args[1], replica))

    def decode_batch(self, replica: int) -> int:
        """Running requests of ``replica`` past their prefill."""
        return int(kernels.decode_batch(self.kernel_args[1], replica))

    # ------------------------------------------------------------------------------------------------ internals
    def __getstate__(self) -> dict:
        """Pickled without the kernels' objects (numba structrefs do not pickle); :meth:`__setstate__` rebuilds them."""
        state = dict(self.__dict__)
        del state["kernel_args"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.kernel_args = kernels.kernel_refs(self.tables, self.state)

    def __deepcopy__(self, memo: dict) -> ServingSimulator:
        """An independent copy in the same state (the executor, workload, profile and tables are shared)."""
        twin = copy.copy(self)
        twin.state = kernels.ServingState(*(array.copy() for array in self.state))
        state = twin.state
        twin.replica, twin.prefill_target, twin.prefilled, twin.generated = state.replica, state.prefill_target, state.prefilled, state.generated
        twin.kv_tokens, twin.blocks, twin.prefix_hit_tokens = state.kv_tokens, state.blocks, state.prefix_hit_tokens
        twin.first_token_s, twin.finish_s, twin.preemptions = state.first_token_s, state.finish_s, state.preemptions
        twin.kernel_args = (self.kernel_args[0], kernels.StateRef(*state))
        twin.replicas = [ReplicaView(twin, index) for index in range(len(self.replicas))]
        twin._chunks, twin._decodes, twin._released = (a.copy() for a in self._scratch())
        return twin

    def _scratch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._chunks, self._decodes, self._released

    def _iterate_with_executor(self, r: int) -> None:
        """One iteration of replica ``r`` run and timed by the executor (the kernels make every decision)."""
        chunks, decodes, released = self._scratch()
        start_s, n_chunks, n_decodes, n_released = kernels.begin_iteration(*self.kernel_args, r, chunks, decodes, released)
        for victim in released[:n_released].tolist():
            self.executor.release(r, victim)
        if n_chunks == 0 and n_decodes == 0:
            return
        batch_decodes = decodes[:n_decodes].copy()
        duration_s = self.executor.run_iteration(r, chunks[:n_chunks].copy(), np.stack((batch_decodes, self.kv_tokens[batch_decodes]), axis=1))
        n_finished = kernels.end_iteration(*self.kernel_args, r, start_s + duration_s, chunks, n_chunks, decodes, n_decodes, released)
        for request in released[:n_finished].tolist():
            self.executor.release(r, request)
