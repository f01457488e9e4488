"""``llumnix-migrate``: Llumnix's dispatch and migration (Sun et al., OSDI 2024) on the serving simulator.

Every arrival goes to the freest replica (the ``llumnix`` router's freeness: free KV blocks minus the blocks its
waiting requests need, per outstanding request). At every rebalancing point
(:data:`~schedgym.envs.llmrouting.simulator.REBALANCE_INTERVAL_S` apart, up to the last arrival) the least free
replica, if its freeness is below zero (its queue does not fit its free blocks), migrates one request to the
freest one, if that one's freeness is positive: its decoding request with the fewest KV tokens that the freest
one can hold, copied live over the instance's link (:func:`~schedgym.envs.llmrouting.kernels.migration_candidate`).
Llumnix migrates running requests: the memory they free lets the source admit its queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedgym.baselines.llmrouting.routers import freeness
from schedgym.envs.llmrouting import RoutingInstance, RoutingSolution, ServingSimulator
from schedgym.envs.llmrouting.simulator import REBALANCE_INTERVAL_S, rebalance_points


def llumnix_pair(sim: ServingSimulator) -> tuple[int, int] | None:
    """(source, destination) of the migration Llumnix makes now, or None: least free to freest, when the least
    free one's freeness is negative, the freest one's positive and some request can move between them."""
    free = freeness(sim)
    source, destination = int(np.argmin(free)), int(np.argmax(free))
    if free[source] >= 0 or free[destination] <= 0 or sim.migration_candidate(source, destination, queued=False) is None:
        return None
    return source, destination


@dataclass
class LlumnixMigrate:
    """Freeness dispatch plus migration from the least to the freest replica (see the module).

    Attributes:
        interval_s: seconds between rebalancing points.
    """

    interval_s: float = REBALANCE_INTERVAL_S

    def solve(self, instance: RoutingInstance, *, time_limit: float | None = None, seed: int | None = None) -> RoutingSolution:
        sim = instance.simulator(migration=True)
        self.serve(sim)
        return instance.solution_of(sim)

    def serve(self, sim: ServingSimulator) -> None:
        """Route, migrate and serve every request of ``sim`` (a fresh simulator with a migration link)."""
        arrivals = sim.workload.arrival_s
        for request in range(sim.workload.n_requests):
            if request:
                for point_s in rebalance_points(float(arrivals[0]), float(arrivals[request - 1]), float(arrivals[request]), self.interval_s):
                    sim.advance_to(float(point_s))
                    pair = llumnix_pair(sim)
                    if pair is not None:
                        sim.migrate(*pair, float(point_s))
            sim.advance_to(float(arrivals[request]))
            sim.route(request, int(np.argmax(freeness(sim))))
        sim.run_to_completion()
