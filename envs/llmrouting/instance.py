"""A routing instance: a workload, the replicas serving it, their latency profile and the SLO thresholds."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from schedgym.envs.llmrouting.profile import LatencyProfile
from schedgym.envs.llmrouting.simulator import LINKS, IterationExecutor, MigrationLink, ReplicaSpec, ServingSimulator
from schedgym.envs.llmrouting.solution import TPOT_SLO_S, TTFT_SLO_S, RoutingSolution
from schedgym.envs.llmrouting.workload import Workload


@dataclass(frozen=True, eq=False)
class RoutingInstance:
    """What a router is evaluated on.

    Attributes:
        name: instance name (``azure-conv-high-4``).
        workload: the requests.
        replicas: one spec per replica.
        profile: iteration times of the model on the hardware (of every replica whose spec names none).
        group: the class it is reported under.
        ttft_slo_s / tpot_slo_s: SLO thresholds for ``slo_attainment``.
        link: what migrated KV caches are copied over, in a simulation that allows migration.
    """

    name: str
    workload: Workload
    replicas: tuple[ReplicaSpec, ...]
    profile: LatencyProfile
    group: str = "all"
    ttft_slo_s: float = TTFT_SLO_S
    tpot_slo_s: float = TPOT_SLO_S
    link: MigrationLink = LINKS["network"]

    @property
    def n_replicas(self) -> int:
        return len(self.replicas)

    def simulator(self, executor: IterationExecutor | None = None, migration: bool = False) -> ServingSimulator:
        """A fresh simulation of the workload on the replicas (``executor``: runs and times the iterations;
        ``migration``: requests may migrate over ``link``)."""
        return ServingSimulator(self.workload, list(self.replicas), self.profile, executor, link=self.link, migration=migration)

    def solution_of(self, sim: ServingSimulator) -> RoutingSolution:
        """The routing log of a finished simulation."""
        min_decode_s = min(spec.profile_or(self.profile).decode_time_s(1, 1) / spec.speed for spec in self.replicas)
        return RoutingSolution(sim.replica.copy(), sim.first_token_s.copy(), sim.finish_s.copy(), self.n_replicas, min_decode_s)


@lru_cache(maxsize=64)
def measured_capacity_rps(workload: Workload, replicas: tuple[ReplicaSpec, ...], profile: LatencyProfile) -> float:
    """Requests per second the replicas sustain on this request mix: every request arrives at time 0, routed
    round-robin, and the capacity is the number served divided by the time the last one finishes (cached per
    workload, replicas and profile object)."""
    burst = replace(workload, arrival_s=np.zeros(workload.n_requests))
    sim = ServingSimulator(burst, list(replicas), profile)
    for request in range(burst.n_requests):
        sim.route(request, request % len(replicas))
    sim.run_to_completion()
    return burst.n_requests / float(np.nanmax(sim.finish_s))
