"""The batched llmrouting engine: B serving simulations advanced together by one compiled call per decision.

    batch = LlmRoutingBatch(RoutingGenerator(), n_envs=64, seed=0)
    obs = batch.reset()
    obs, reward, done, infos = batch.step(actions)  # actions: int ``[B]``, the replica of each slot's request

Every slot runs the kernels of :mod:`schedgym.envs.llmrouting.kernels` (those ``ServingSimulator``, so every
router and ``LlmRoutingEnv``, run on) and is encoded by the same compiled
:func:`~schedgym.graphs.llmrouting.write_observation`, so a slot's trajectory is the env's with the same instance
and actions. Each slot keeps its own arrays, sized for its instance (numba typed lists hold them), so slots of any
workload length, replica count or profile mix; a finished slot is reset at once with a fresh instance (auto-reset)
and ``infos[b]`` carries the finished episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces
from numba import njit, prange
from numba.typed import List

from schedgym.envs.batching import SlotBatch, first_masked_action
from schedgym.envs.llmrouting import kernels
from schedgym.envs.llmrouting.env import source_and_encoder
from schedgym.envs.llmrouting.instance import RoutingInstance
from schedgym.envs.llmrouting.solution import metrics
from schedgym.envs.llmrouting.suites import RoutingGenerator
from schedgym.graphs.llmrouting import observation_arrays, write_observation


class LlmRoutingBatch(SlotBatch):
    """``n_envs`` routing episodes stepped in lockstep (the batched twin of ``LlmRoutingEnv``, same options).

    Attributes:
        observation: dict of arrays with a leading ``[B]`` axis, the fields of ``LlmRoutingEnv``'s observation.
            Rewritten in place by every :meth:`step`: copy what you keep.
        observation_space / action_space: those of one slot.
        instances: the instance each slot is routing now.
    """

    render_mode = None

    def __init__(
        self,
        instances: RoutingInstance | Sequence[RoutingInstance] | RoutingGenerator | str,
        n_envs: int,
        *,
        max_replicas: int | None = None,
        seed: int | None = None,
    ) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self.source, self.encoder = source_and_encoder(instances, max_replicas)
        self.n_envs = int(n_envs)
        self.observation_space: spaces.Dict = self.encoder.observation_space
        self.action_space = spaces.Discrete(self.encoder.max_replicas)
        self.observation = self.encoder.allocate((self.n_envs,))
        self.instances: list[RoutingInstance | None] = [None] * self.n_envs
        self._tables, self._states, self._scratch = List(), List(), List()  # per slot, as the kernels take them
        self._results: list[kernels.ServingState | None] = [None] * self.n_envs  # per slot, the same state as arrays
        self._episode_return = np.zeros(self.n_envs, dtype=np.float32)
        self.seed(seed)

    # ----------------------------------------------------------------------------------------------- API
    def step(self, actions: np.ndarray, terminal_observations: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Route each slot's current request to replica ``actions[b]``, then serve up to its next arrival.

        Returns ``(observation, reward, done, infos)``: reward float32 ``[B]`` (the env's), done bool ``[B]``; for
        a slot whose episode ended, ``infos[b]`` holds ``metrics``, ``instance``, ``solution`` and ``episode``,
        with ``terminal_observations`` also ``terminal_observation``, and the observation is already the next
        episode's first.

        Raises:
            ValueError: if ``actions`` is not one action per slot, or names a replica a slot does not have.
        """
        actions = self._slot_actions(actions, "replica")
        mask = self.observation["action_mask"]
        b = first_masked_action(actions, mask)
        if b >= 0:
            raise ValueError(f"invalid action {int(actions[b])} in slot {b}: choose a replica in 0..{int(mask[b].sum()) - 1}")
        reward, done = np.zeros(self.n_envs), np.zeros(self.n_envs, dtype=bool)
        obs = self.observation
        _step_batch(
            self._tables, self._states, self._scratch, actions, reward, done,
            *observation_arrays(obs),
        )
        reward = reward.astype(np.float32)
        self._episode_return += reward
        infos: list[dict] = [{} for _ in range(self.n_envs)]
        for b in np.flatnonzero(done):
            if terminal_observations:
                infos[b]["terminal_observation"] = {key: value[b].copy() for key, value in obs.items()}
            instance, state = self.instances[b], self._results[b]
            solution = instance.solution_of(_Finished(state))
            infos[b].update(
                metrics=metrics(instance.workload, solution, instance.ttft_slo_s, instance.tpot_slo_s), instance=instance.name,
                solution=solution, episode={"r": float(self._episode_return[b]), "l": instance.workload.n_requests},
            )
            self._reset_slot(int(b))
        return obs, reward, done, infos

    # ----------------------------------------------------------------------------------------------- internals
    def _reset_slot(self, b: int) -> None:
        instance = self.source.draw(self._rngs[b], None)
        if instance.n_replicas > self.encoder.max_replicas:
            raise ValueError(f"{instance.n_replicas} replicas do not fit the encoding of {self.encoder.max_replicas}; raise max_replicas")
        sim = instance.simulator()  # checks the instance; its arrays become the slot's
        sim.advance_to(float(instance.workload.arrival_s[0]))
        tables, state = sim.kernel_args
        if len(self._tables) < self.n_envs:
            self._tables.append(tables)
            self._states.append(state)
            self._scratch.append(sim._scratch())
        else:
            self._tables[b], self._states[b], self._scratch[b] = tables, state, sim._scratch()
        self.instances[b] = instance
        self._results[b] = sim.state
        obs = self.observation
        write_observation(tables, state, 0, *(array[b] for array in observation_arrays(obs)))
        self._episode_return[b] = 0.0


class _Finished:
    """The per-request results of a finished slot, as ``RoutingInstance.solution_of`` reads a simulator."""

    def __init__(self, state: kernels.ServingState) -> None:
        self.replica, self.first_token_s, self.finish_s = state.replica, state.first_token_s, state.finish_s


@njit(cache=True, parallel=True)
def _step_batch(tables, states, scratch, actions, reward, done, replica_features, replica_mask, request_features, action_mask,
                replica_load_features, request_load_features):
    """Route and serve every slot (:func:`~schedgym.envs.llmrouting.kernels.step_route`), then write the
    observation of each slot's next request. Slots run on numba's threads."""
    for k in prange(len(actions)):
        b = np.int64(k)
        run_tables, run_state = tables[b], states[b]
        chunks, decodes, released = scratch[b]
        reward[b] = kernels.step_route(run_tables, run_state, actions[b], chunks, decodes, released)
        routed = run_state.counts[kernels.ROUTED]
        done[b] = routed == run_tables.config[kernels.N_REQUESTS]
        if not done[b]:
            write_observation(run_tables, run_state, routed, replica_features[b], replica_mask[b], request_features[b], action_mask[b],
                              replica_load_features[b], request_load_features[b])
