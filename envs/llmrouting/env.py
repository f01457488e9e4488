"""The Gymnasium LLM routing environment ``schedgym/LlmRouting-v0``."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.llmrouting.instance import RoutingInstance
from schedgym.envs.llmrouting.kernels import write_migration_mask
from schedgym.envs.llmrouting.simulator import REBALANCE_INTERVAL_S, ServingSimulator, rebalance_points
from schedgym.envs.llmrouting.solution import metrics
from schedgym.envs.llmrouting.suites import RoutingGenerator, resolve_suite
from schedgym.envs.sources import InstanceSource
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.graphs.llmrouting import LlmRoutingEncoder


def source_and_encoder(
    instances: RoutingInstance | Sequence[RoutingInstance] | RoutingGenerator | str, max_replicas: int | None, migration: bool = False
) -> tuple[InstanceSource, LlmRoutingEncoder]:
    """The instance source of ``instances`` and the encoder sized for it (``max_replicas`` default: the most
    replicas an instance has), as ``LlmRoutingEnv`` and ``LlmRoutingBatch`` both build them."""
    source = InstanceSource(instances, instance_type=RoutingInstance, generator_type=RoutingGenerator, load=resolve_suite)
    generator = source.generator
    largest = max(generator.replica_counts) if generator else source.largest(lambda inst: inst.n_replicas)
    return source, LlmRoutingEncoder(max_replicas or largest, migration)


class LlmRoutingEnv(gym.Env):
    """Route every arriving LLM request to one of N continuously batching replicas.

    ## Description
    Requests of a workload arrive over time; at each arrival the agent picks the replica that serves it. Between
    arrivals the serving simulator runs every replica's iterations (chunked prefill, continuous-batching decode,
    paged KV with preemption, prefix cache), see :class:`schedgym.envs.llmrouting.ServingSimulator`.

    ## Action Space
    ``Discrete(max_replicas)``: the replica; padding replicas are masked and raise ``ValueError``. With
    ``migration=True``, ``Discrete(R + 2 R^2)`` (R = max_replicas): at an arrival, the replica (< R); at a
    rebalancing point, ``R + (kind * R + source) * R + destination`` migrates a request from ``source`` to
    ``destination`` (kind 0: its decoding request with the fewest KV tokens, copied live; kind 1: its newest
    queued request), and ``R`` migrates nothing. Illegal actions are masked and raise ``ValueError``.

    ## Observation Space
    A ``Dict`` with one feature row per replica and the request's features, see
    :class:`schedgym.graphs.llmrouting.LlmRoutingEncoder`.

    ## Migration
    With ``migration=True`` the agent also decides at rebalancing points, every ``rebalance_interval_s`` from the
    first arrival up to the last (those where some migration is legal); KV caches are copied over the
    instance's ``link`` (see :class:`schedgym.envs.llmrouting.MigrationLink`).

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
    ``time_s``, ``request`` (the next to route) and ``decision`` (``"route"`` or ``"rebalance"``) every step; at
    termination ``solution`` (the routing log, a :class:`RoutingSolution`), ``metrics`` and ``migrations``.

    ## Arguments
    ``gym.make("schedgym/LlmRouting-v0", instances="azure-conv-high-4")``, ``max_replicas`` (default: the largest
    instance's replica count), ``migration`` (default False), ``rebalance_interval_s`` (default 0.1).

    ## References
    Kwon et al., Efficient memory management for LLM serving with PagedAttention (vLLM), SOSP 2023.
    Agrawal et al., Taming throughput-latency tradeoff in LLM inference with Sarathi-Serve, OSDI 2024.
    Sun et al., Llumnix: dynamic scheduling for LLM serving, OSDI 2024.

    ## Version History
    v0: initial version (``migration`` added as an option; off, the env is unchanged).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        instances: RoutingInstance | Sequence[RoutingInstance] | RoutingGenerator | str = "azure-conv-moderate-4",
        *,
        max_replicas: int | None = None,
        migration: bool = False,
        rebalance_interval_s: float = REBALANCE_INTERVAL_S,
    ) -> None:
        if not rebalance_interval_s > 0:
            raise ValueError(f"rebalance_interval_s must be positive, got {rebalance_interval_s}")
        self.source, self.encoder = source_and_encoder(instances, max_replicas, migration)
        self.migration = bool(migration)
        self.rebalance_interval_s = float(rebalance_interval_s)
        self.observation_space = self.encoder.observation_space
        self.action_space = MaskedDiscrete(self.encoder.n_actions, self.action_masks)
        self.sim: ServingSimulator | None = None
        self.instance: RoutingInstance | None = None
        self.request = 0
        self.now_s = 0.0  # the time of the current decision
        self._obs: dict[str, np.ndarray] | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        instance = self.source.draw(self.np_random, options)
        self.instance = instance
        self.sim = instance.simulator(migration=self.migration)
        self.request = 0
        self.now_s = float(instance.workload.arrival_s[0])
        self.sim.advance_to(self.now_s)
        self._obs = self.encoder.encode(self.sim, 0)
        return self._obs, self._info()

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        action = int(action)
        if not (0 <= action < self.encoder.n_actions and self._obs["action_mask"][action]):
            raise ValueError(f"invalid action {action}: {self._legal_actions_in_words()}")
        workload = self.instance.workload
        if not self.migration:
            reward = self.sim.route_next(action)
            self.request += 1
        else:
            reward = self._step_with_migration(action)
        terminated = self.request == workload.n_requests
        info = self._info()
        if terminated:
            solution = self.instance.solution_of(self.sim)
            info["solution"] = solution
            info["metrics"] = metrics(workload, solution, self.instance.ttft_slo_s, self.instance.tpot_slo_s)
            info["migrations"] = self.sim.migration_counts
            self._obs = self.encoder.encode(self.sim, workload.n_requests - 1)
        else:
            self._obs = self.encoder.encode(self.sim, -1 if self.rebalancing else self.request)
        return self._obs, reward, terminated, False, info

    @property
    def rebalancing(self) -> bool:
        """Whether the current decision is a rebalancing point (else the arrival of request ``request``)."""
        return self.migration and self.now_s < float(self.instance.workload.arrival_s[min(self.request, self.instance.workload.n_requests - 1)])

    def action_masks(self) -> np.ndarray:
        """bool ``[n_actions]``: the legal actions now (the real replicas at an arrival; see the action space)."""
        if self._obs is None:
            mask = np.zeros(self.encoder.n_actions, dtype=bool)
            mask[: self.encoder.max_replicas] = True
            return mask
        return self._obs["action_mask"].astype(bool)

    def _step_with_migration(self, action: int) -> float:
        """Apply ``action`` at the current decision, then advance to the next one (a rebalancing point before the
        next arrival where some migration is legal, else the arrival). Returns the reward."""
        workload, r = self.instance.workload, self.encoder.max_replicas
        if not self.rebalancing:
            self.sim.route(self.request, action)
            self.request += 1
        elif action != r:
            kind, pair = divmod(action - r, r * r)
            self.sim.migrate(*divmod(pair, r), self.now_s, queued=kind == 1)
        if self.request == workload.n_requests:
            self.sim.run_to_completion()
            return -self.sim.take_time_in_system_s(np.inf) / workload.n_requests
        arrival_s = float(workload.arrival_s[self.request])
        mask = np.zeros((2, r, r), dtype=np.int8)
        for point_s in rebalance_points(float(workload.arrival_s[0]), self.now_s, arrival_s, self.rebalance_interval_s):
            self.sim.advance_to(float(point_s))
            write_migration_mask(*self.sim.kernel_args, mask)
            if mask.any():
                self.now_s = float(point_s)
                break
        else:
            self.sim.advance_to(arrival_s)
            self.now_s = arrival_s
        return -self.sim.take_time_in_system_s(self.now_s) / workload.n_requests

    def _legal_actions_in_words(self) -> str:
        n = self.instance.n_replicas
        if not self.rebalancing:
            return f"route to a replica in 0..{n - 1}"
        legal = np.flatnonzero(self._obs["action_mask"])
        return f"at a rebalancing point choose {self.encoder.max_replicas} (migrate nothing) or a legal migration {legal.tolist()[:12]}"

    def _info(self) -> dict:
        workload = self.instance.workload
        return {"time_s": self.now_s if self.migration else float(workload.arrival_s[min(self.request, workload.n_requests - 1)]),
                "request": self.request, "instance": self.instance.name, "decision": "rebalance" if self.rebalancing else "route"}
