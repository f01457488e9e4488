"""Routing heuristics: each picks the replica for the arriving request from the simulator's state, among those
that take arrivals (all but the decode replicas of a disaggregated cluster, whose requests' decode replica is then
the least loaded one at their first token).

* ``rr``: round-robin over the replicas.
* ``random``: uniformly at random (seeded).
* ``least-outstanding``: fewest requests waiting or running.
* ``jsq-tokens``: join the shortest queue measured in pending prefill tokens (waiting prompts + unfinished
  prefills), ties to fewer outstanding requests.
* ``p2c``: power of two choices: two distinct replicas at random, the one with fewer outstanding requests.
* ``llumnix``: Llumnix-style freeness, (free KV blocks - blocks the waiting requests need) / (outstanding + 1);
  the freest replica.
* ``prefix-aware``: the replica holding the longest cached prefix of the prompt, unless its outstanding requests
  exceed the least-loaded replica's by more than ``imbalance`` (default 8): then least-outstanding (ties to the
  longer prefix).
* ``predicted-sjf``: the replica whose predicted backlog ends soonest, in seconds of its own profile: its pending
  prefill tokens plus this prompt at its per-token prefill time, and the predicted remaining output tokens of its
  requests plus this one's (:mod:`~schedgym.envs.llmrouting.length_predictor`) at its per-token decode time at
  its current batch, divided by its speed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from schedgym.envs.llmrouting import RoutingInstance, RoutingSolution, ServingSimulator
from schedgym.envs.llmrouting.length_predictor import predicted_output_tokens

IMBALANCE = 8


def outstanding(sim: ServingSimulator) -> np.ndarray:
    """Requests waiting or running per replica ``[n_replicas]``."""
    return np.array([len(r.waiting) + len(r.running) for r in sim.replicas])


def _rr(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    candidates = sim.arrival_replicas
    return int(candidates[request % len(candidates)])


def _random(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    candidates = sim.arrival_replicas
    return int(candidates[rng.integers(len(candidates))])


def _least_outstanding(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    candidates = sim.arrival_replicas
    return int(candidates[np.argmin(outstanding(sim)[candidates])])


def _jsq_tokens(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    candidates = sim.arrival_replicas
    tokens = np.array([sim.pending_prefill_tokens(r) for r in candidates])
    return int(candidates[np.lexsort((outstanding(sim)[candidates], tokens))[0]])


def _p2c(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    a, b = rng.choice(sim.arrival_replicas, size=2, replace=False) if len(sim.arrival_replicas) > 1 else sim.arrival_replicas[[0, 0]]
    load = outstanding(sim)
    return int(a if load[a] <= load[b] else b)


def freeness(sim: ServingSimulator) -> np.ndarray:
    """float ``[n_replicas]``: Llumnix's freeness of each replica, in KV blocks per outstanding request (free
    blocks minus the blocks its waiting requests need to be admitted, over waiting + running + 1)."""
    values = []
    for replica in sim.replicas:
        waiting = replica.waiting
        wanted = int((-(-(sim.prefill_target[waiting] + 1) // replica.spec.block_tokens)).sum())
        values.append((replica.free_blocks - wanted) / (len(waiting) + len(replica.running) + 1))
    return np.array(values)


def _llumnix(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    candidates = sim.arrival_replicas
    return int(candidates[np.argmax(freeness(sim)[candidates])])


def _prefix_aware(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    candidates = sim.arrival_replicas
    hits = np.array([sim.prefix_hit_tokens_at(r, request) for r in candidates])
    load = outstanding(sim)[candidates]
    best = int(np.lexsort((load, -hits))[0])
    if hits[best] > 0 and load[best] <= load.min() + IMBALANCE:
        return int(candidates[best])
    return int(candidates[np.lexsort((-hits, load))[0]])


def _predicted_sjf(sim: ServingSimulator, request: int, rng: np.random.Generator) -> int:
    predicted = predicted_output_tokens(sim.workload)
    candidates = sim.arrival_replicas
    backlog_s = []
    for r in candidates:
        replica = sim.replicas[r]
        profile = replica.spec.profile_or(sim.profile)
        members = np.concatenate([replica.waiting, replica.running]).astype(np.int64)
        decode_left = float(np.maximum(predicted[members] - sim.generated[members], 1.0).sum()) + predicted[request]
        batch = max(len(replica.running), 1)
        prefill = sim.pending_prefill_tokens(r) + int(sim.workload.prompt_tokens[request]) - sim.prefix_hit_tokens_at(r, request)
        budget = replica.spec.token_budget
        seconds = prefill * profile.prefill_time_s(budget) / budget + decode_left * profile.decode_time_s(batch, 1024) / batch
        backlog_s.append(seconds / replica.spec.speed)
    return int(candidates[np.argmin(backlog_s)])


#: router name -> (chooser, one-line description)
ROUTERS: dict[str, tuple[Callable[[ServingSimulator, int, np.random.Generator], int], str]] = {
    "rr": (_rr, "round-robin"),
    "random": (_random, "uniformly random replica"),
    "least-outstanding": (_least_outstanding, "fewest waiting + running requests"),
    "jsq-tokens": (_jsq_tokens, "shortest queue in pending prefill tokens"),
    "p2c": (_p2c, "power of two choices on outstanding requests"),
    "llumnix": (_llumnix, "Llumnix-style freeness: (free KV blocks - blocks wanted by waiting) / requests"),
    "prefix-aware": (_prefix_aware, f"longest cached prefix unless more than {IMBALANCE} requests above the least loaded, then least-outstanding"),
    "predicted-sjf": (_predicted_sjf, "shortest predicted backlog in seconds of each replica's profile (predicted output lengths)"),
}


@dataclass
class Router:
    """A heuristic of :data:`ROUTERS` as a solver."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in ROUTERS:
            raise ValueError(f"unknown router {self.name!r}; choose one of {', '.join(ROUTERS)}")

    def solve(self, instance: RoutingInstance, *, time_limit: float | None = None, seed: int | None = None) -> RoutingSolution:
        choose = ROUTERS[self.name][0]
        rng = np.random.default_rng(seed)
        sim = instance.simulator()
        arrivals = instance.workload.arrival_s
        for request in range(instance.workload.n_requests):
            sim.advance_to(float(arrivals[request]))
            sim.route(request, choose(sim, request, rng))
        sim.run_to_completion()
        return instance.solution_of(sim)
