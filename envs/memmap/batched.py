"""The batched memmap engine: B episodes in stacked numpy arrays, advanced together by one compiled call.

    batch = MemMapBatch(TraceGenerator(), n_envs=256, seed=0)
    obs = batch.reset()
    obs, reward, done, infos = batch.step(actions)  # actions: int ``[B]``: 0 = slow, k + 1 = candidate k

Every slot runs the kernels of :mod:`schedgym.envs.memmap.kernels` (those ``MemoryMappingEnv`` and every greedy
placer run on) and its observation is updated by the same compiled
:func:`~schedgym.graphs.memmap.update_observation`, so a slot's trajectory is the env's with the same instance
and actions. A finished slot is reset at once with a fresh instance (auto-reset); ``infos[b]`` then carries the
finished episode. Slots may hold instances of different sizes: the kernel arrays are padded to the largest drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from schedgym.envs.batching import SlotBatch, first_masked_action, grown, slot_views

from schedgym.envs.memmap import kernels
from schedgym.envs.memmap.env import source_and_encoder
from schedgym.envs.memmap.instance import MemMapInstance
from schedgym.envs.memmap.solution import MemMapSolution, benefit_s, metrics, op_times_s
from schedgym.envs.memmap.tracer import TraceGenerator


class MemMapBatch(SlotBatch):
    """``n_envs`` memmap episodes stepped in lockstep (the batched twin of ``MemoryMappingEnv``, same options).

    Attributes:
        observation: dict of arrays with a leading ``[B]`` axis, the fields of ``MemoryMappingEnv``'s observation.
            Rewritten in place by every :meth:`step`: copy what you keep.
        observation_space / action_space: those of one slot (as the env's).
        instances: the instance each slot is deciding now.
    """

    render_mode = None  # a batch renders nothing: render one slot's instance with MemoryMappingEnv

    def __init__(
        self,
        instances: MemMapInstance | Sequence[MemMapInstance] | TraceGenerator | str,
        n_envs: int,
        *,
        candidates: int = 8,
        max_buffers: int | None = None,
        max_edges: int | None = None,
        seed: int | None = None,
    ) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self.source, self.encoder = source_and_encoder(instances, candidates, max_buffers, max_edges)
        self.n_envs = int(n_envs)
        self.observation_space: spaces.Dict = self.encoder.observation_space
        self.action_space = spaces.Discrete(self.encoder.candidates + 1)
        self.observation = self.encoder.allocate((self.n_envs,))
        self._capacity = (0, 0, 0, 0)  # buffers, ops, accesses, overlap entries the kernel arrays hold per slot
        self._allocate((1, 1, 1, 1))
        self.instances: list[MemMapInstance | None] = [None] * self.n_envs
        self._episode_return = np.zeros(self.n_envs, dtype=np.float32)
        self.seed(seed)

    # ----------------------------------------------------------------------------------------------- API
    def step(self, actions: np.ndarray, terminal_observations: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Decide the current buffer of every slot: ``actions[b]`` 0 = slow memory, k + 1 = candidate k.

        Returns ``(observation, reward, done, infos)``: reward float32 ``[B]`` (the env's), done bool ``[B]``; for
        a slot whose episode ended, ``infos[b]`` holds ``metrics``, ``instance``, ``solution`` and ``episode``
        (``r``: return, ``l``: decisions), with ``terminal_observations`` also ``terminal_observation``, and the
        observation is already the next episode's first.

        Raises:
            ValueError: if ``actions`` is not one action per slot, or one of them is masked in its slot.
        """
        actions = self._slot_actions(actions, "action")
        mask = self.observation["action_mask"]
        b = first_masked_action(actions, mask)
        if b >= 0:
            raise ValueError(
                f"invalid action {int(actions[b])} in slot {b}: allowed there are {np.flatnonzero(mask[b]).tolist()} (0 = slow, k + 1 = candidate k)"
            )
        state, limits = self.state, self.tables.limits
        runtime_before, peak_before = state.time_s[:, kernels.RUNTIME].copy(), state.counts[:, kernels.PEAK].copy()
        obs = self.observation
        kernels.step_batch(self.tables, state, actions - 1, obs["buffer_features"], obs["candidate_features"], obs["action_mask"])
        packing = limits[:, kernels.PACKING] == 1
        all_slow = state.time_s[:, kernels.ALL_SLOW]
        mapping_reward = np.divide(runtime_before - state.time_s[:, kernels.RUNTIME], all_slow, out=np.zeros(self.n_envs), where=all_slow > 0)
        packing_reward = -(state.counts[:, kernels.PEAK] - peak_before) / limits[:, kernels.CAPACITY]
        reward = np.where(packing, packing_reward, mapping_reward).astype(np.float32)
        self._episode_return += reward
        done = state.counts[:, kernels.STEP] == limits[:, kernels.N_BUFFERS]
        infos: list[dict] = [{} for _ in range(self.n_envs)]
        for b in np.flatnonzero(done):
            if terminal_observations:
                infos[b]["terminal_observation"] = {key: value[b].copy() for key, value in obs.items()}
            instance = self.instances[b]
            solution = MemMapSolution(state.offset[b, : instance.n_buffers].copy())
            infos[b].update(
                metrics=metrics(instance, solution), instance=instance.name, solution=solution,
                episode={"r": float(self._episode_return[b]), "l": instance.n_buffers},
            )
            self._reset_slot(int(b))
        return obs, reward, done, infos

    # ----------------------------------------------------------------------------------------------- internals
    def _allocate(self, capacity: tuple[int, int, int, int]) -> None:
        """(Re)allocate the kernel arrays for ``capacity`` (buffers, ops, accesses, overlaps), keeping their contents."""
        n_buffers, n_ops, n_accesses, n_overlaps = capacity
        tables = kernels.allocate_tables((self.n_envs,), n_buffers, n_ops, n_accesses, n_overlaps)
        state = kernels.allocate_state((self.n_envs,), n_buffers, n_ops, self.encoder.candidates)
        if self._capacity != (0, 0, 0, 0):
            tables, state = grown(self.tables, tables), grown(self.state, state)
        self.tables, self.state, self._capacity = tables, state, capacity

    def _reset_slot(self, b: int) -> None:
        instance = self.source.draw(self._rngs[b], None)
        needed = kernels.table_sizes(instance)
        if any(n > have for n, have in zip(needed, self._capacity)):
            self._allocate(tuple(max(n, have) for n, have in zip(needed, self._capacity)))
        self.instances[b] = instance
        tables, state = slot_views(self.tables, b), slot_views(self.state, b)
        kernels.fill_tables(tables, instance)
        kernels.reset_episode(tables, state, float(op_times_s(instance, np.zeros(instance.n_buffers, dtype=bool)).sum()))
        obs = {key: value[b] for key, value in self.observation.items()}
        self.encoder.reset(obs, instance, benefit_s(instance))
        kernels.observe(tables, state, -1, obs["buffer_features"], obs["candidate_features"], obs["action_mask"])
        self._episode_return[b] = 0.0

