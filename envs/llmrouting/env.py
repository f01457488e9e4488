"""The Gymnasium LLM routing environment ``schedgym/LlmRouting-v0``."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.llmrouting.instance import RoutingInstance
from schedgym.envs.llmrouting.simulator import ServingSimulator
from schedgym.envs.llmrouting.solution import metrics
from schedgym.envs.llmrouting.suites import RoutingGenerator, resolve_suite
from schedgym.envs.sources import InstanceSource
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.graphs.llmrouting import LlmRoutingEncoder


def source_and_encoder(
    instances: RoutingInstance | Sequence[RoutingInstance] | RoutingGenerator | str, max_replicas: int | None
) -> tuple[InstanceSource, LlmRoutingEncoder]:
    """The instance source of ``instances`` and the encoder sized for it (``max_replicas`` default: the most
    replicas an instance has), as ``LlmRoutingEnv`` and ``LlmRoutingBatch`` both build them."""
    source = InstanceSource(instances, instance_type=RoutingInstance, generator_type=RoutingGenerator, load=resolve_suite)
    generator = source.generator
    largest = max(generator.replica_counts) if generator else source.largest(lambda inst: inst.n_replicas)
    return source, LlmRoutingEncoder(max_replicas or largest)


class LlmRoutingEnv(gym.Env):
    """Route every arriving LLM request to one of N continuously batching replicas.

    ## Description
    Requests of a workload arrive over time; at each arrival the agent picks the replica that serves it. Between
    arrivals the serving simulator runs every replica's iterations (chunked prefill, continuous-batching decode,
    paged KV with preemption, prefix cache), see :class:`schedgym.envs.llmrouting.ServingSimulator`.

    ## Action Space
    ``Discrete(max_replicas)``: the replica; padding replicas are masked and raise ``ValueError``.

    ## Observation Space
    A ``Dict`` with one feature row per replica and the request's features, see
    :class:`schedgym.graphs.llmrouting.LlmRoutingEncoder`.

    ## Starting State
    The first request of an instance drawn at reset (from the :class:`RoutingGenerator`, uniformly from the list,
    or the one given);
    ``reset(options={"instance": inst})`` forces one.

    ## Reward
    Minus the time the requests spent in the system since the last step (requests present x elapsed seconds,
    Little's law), divided by the number of requests, so the return is minus the mean end-to-end latency.

    ## Episode End
    Terminates after the last request is routed (and everything has been served); never truncates.

    ## Information
    ``time_s`` and ``request`` every step; at termination ``solution`` (the routing log, a
    :class:`RoutingSolution`) and ``metrics``.

    ## Arguments
    ``gym.make("schedgym/LlmRouting-v0", instances="azure-conv-high-4")``, ``max_replicas`` (default: the largest
    instance's replica count).

    ## References
    Kwon et al., Efficient memory management for LLM serving with PagedAttention (vLLM), SOSP 2023.
    Agrawal et al., Taming throughput-latency tradeoff in LLM inference with Sarathi-Serve, OSDI 2024.
    Sun et al., Llumnix: dynamic scheduling for LLM serving, OSDI 2024.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        instances: RoutingInstance | Sequence[RoutingInstance] | RoutingGenerator | str = "azure-conv-moderate-4",
        *,
        max_replicas: int | None = None,
    ) -> None:
        self.source, self.encoder = source_and_encoder(instances, max_replicas)
        self.observation_space = self.encoder.observation_space
        self.action_space = MaskedDiscrete(self.encoder.max_replicas, self.action_masks)
        self.sim: ServingSimulator | None = None
        self.instance: RoutingInstance | None = None
        self.request = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        instance = self.source.draw(self.np_random, options)
        self.instance = instance
        self.sim = instance.simulator()
        self.request = 0
        self.sim.advance_to(float(instance.workload.arrival_s[0]))
        return self.encoder.encode(self.sim, 0), self._info()

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        replica = int(action)
        if not 0 <= replica < self.instance.n_replicas:
            raise ValueError(f"invalid action {action!r}: choose a replica in 0..{self.instance.n_replicas - 1}")
        workload = self.instance.workload
        reward = self.sim.route_next(replica)
        self.request += 1
        terminated = self.request == workload.n_requests
        info = self._info()
        if terminated:
            solution = self.instance.solution_of(self.sim)
            info["solution"] = solution
            info["metrics"] = metrics(workload, solution, self.instance.ttft_slo_s, self.instance.tpot_slo_s)
            return self.encoder.encode(self.sim, workload.n_requests - 1), reward, True, False, info
        return self.encoder.encode(self.sim, self.request), reward, False, False, info

    def action_masks(self) -> np.ndarray:
        """bool ``[max_replicas]``: the real replicas."""
        mask = np.zeros(self.encoder.max_replicas, dtype=bool)
        if self.instance is not None:
            mask[: self.instance.n_replicas] = True
        return mask

    def _info(self) -> dict:
        workload = self.instance.workload
        return {"time_s": float(workload.arrival_s[min(self.request, workload.n_requests - 1)]), "request": self.request, "instance": self.instance.name}
