"""The batched socdag engine: B runs in stacked numpy arrays, advanced together by one compiled call.

    batch = SocDagBatch(StreamGenerator(), n_envs=256, binding="late", seed=0)
    obs = batch.reset()
    obs, reward, done, infos = batch.step(actions)  # actions: int ``[B]``, one ``SocDagEnv`` action per slot

Every slot runs the kernels of :mod:`schedgym.envs.socdag.kernels` (those :class:`SocDagSimulator`, so every rule
and ``SocDagEnv``, run on) and is encoded by the same compiled
:func:`~schedgym.graphs.socdag.write_observation`, so a slot's trajectory is the env's trajectory with the same
instance and actions. A slot whose run ends is reset at once with a fresh instance (auto-reset); ``infos[b]`` then
carries the finished episode. Slots may hold instances of different sizes: arrays are padded to the largest seen,
and grow when a bigger one is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from schedgym.envs.batching import SlotBatch, first_masked_action, grown, slot_views

from schedgym.envs.socdag import kernels
from schedgym.envs.socdag.env import BINDINGS, MODES, source_and_encoder
from schedgym.envs.socdag.generator import StreamGenerator
from schedgym.envs.socdag.instance import SocDagInstance
from schedgym.envs.socdag.simulator import DEFAULT_QUEUE_CAPACITY, LATE_BINDING_CAPACITY
from schedgym.envs.socdag.solution import SocDagSolution, objective
from schedgym.graphs.socdag import write_batch_observations


class SocDagBatch(SlotBatch):
    """``n_envs`` socdag runs stepped in lockstep (the batched twin of ``SocDagEnv``, same options and actions).

    Attributes:
        observation: dict of arrays with a leading ``[B]`` axis, the fields of ``SocDagEnv``'s observation.
            Rewritten in place by every :meth:`step`: copy what you keep.
        observation_space / action_space: those of one slot (as ``SocDagEnv``'s).
        instances: the instance each slot is running now.
    """

    render_mode = None  # a batch renders nothing: render one slot's instance with SocDagEnv

    def __init__(
        self,
        instances: SocDagInstance | Sequence[SocDagInstance] | StreamGenerator | str,
        n_envs: int,
        *,
        mode: str = "pair",
        binding: str = "early",
        max_tasks: int = 64,
        max_pes: int | None = None,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        seed: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        if binding not in BINDINGS:
            raise ValueError(f"unknown binding {binding!r}; choose one of {BINDINGS}")
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self.source, self.encoder = source_and_encoder(instances, max_tasks, max_pes)
        self.n_envs = int(n_envs)
        self.mode, self.binding = mode, binding
        self.queue_capacity = LATE_BINDING_CAPACITY if binding == "late" else int(queue_capacity)
        self.wait_action = self.encoder.n_actions(mode) - 1
        self.observation_space = spaces.Dict(
            {**self.encoder.observation_space.spaces, "action_mask": spaces.Box(0, 1, (self.wait_action + 1,), np.int8)}
        )
        self.action_space = spaces.Discrete(self.wait_action + 1)
        self._capacity = (0, 0, 0)  # tasks, jobs, edges the arrays hold per slot
        self._allocate(1, 1, 1)
        self.instances: list[SocDagInstance | None] = [None] * self.n_envs
        self._reward_scale = np.ones(self.n_envs)
        self._episode_return = np.zeros(self.n_envs, dtype=np.float32)
        self._episode_length = np.zeros(self.n_envs, dtype=np.int64)
        self.seed(seed)

    # ----------------------------------------------------------------------------------------------- API
    def step(self, actions: np.ndarray, terminal_observations: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Take ``actions[b]`` (a ``SocDagEnv`` action: a (task slot, PE) pair, a task slot, or the wait action) in
        every slot.

        Returns ``(observation, reward, done, infos)``: reward float32 ``[B]`` (``SocDagEnv``'s), done bool
        ``[B]``; for a slot whose run ended, ``infos[b]`` holds ``objective``, ``instance``, ``solution`` and
        ``episode`` (``r``: return, ``l``: decisions), with ``terminal_observations`` also
        ``terminal_observation`` (the state it ended in, as SB3 expects), and the observation is already the next
        run's first.

        Raises:
            ValueError: if ``actions`` is not one action per slot, or one of them is not allowed in its slot.
        """
        actions = self._slot_actions(actions, "action")
        rows = np.arange(self.n_envs)
        mask = self.observation["action_mask"]
        b = first_masked_action(actions, mask)
        if b >= 0:
            allowed = np.flatnonzero(mask[b]).tolist()
            raise ValueError(
                f"invalid action {int(actions[b])} in slot {b}: the legal actions there are {allowed[:20]}"
                f"{'...' if len(allowed) > 20 else ''} (the wait action {self.wait_action} needs late binding and an event to come)"
            )
        waits = actions == self.wait_action
        if self.mode == "pair":
            slots, pes = np.divmod(np.where(waits, 0, actions), self.encoder.max_pes)
        else:
            slots = np.where(waits, 0, actions)
            pes = self.observation["eft_pe"][rows, slots]
        tasks = np.where(waits, -1, self._window[rows, slots])
        job_time_before = self.state.clock_us[:, kernels.JOB_TIME].copy()
        kernels.step_batch(self.tables, self.state, self.queue_capacity, tasks, pes)
        reward = (-(self.state.clock_us[:, kernels.JOB_TIME] - job_time_before) * self._reward_scale).astype(np.float32)
        self._episode_return += reward
        self._episode_length += 1
        done = self.state.counts[:, kernels.N_DONE] == self.tables.sizes[:, 0]
        infos: list[dict] = [{} for _ in range(self.n_envs)]
        finished = np.flatnonzero(done)
        if terminal_observations and finished.size:
            self._write_observation(finished)
            for b in finished:
                infos[b]["terminal_observation"] = {key: value[b].copy() for key, value in self.observation.items()}
        for b in finished:
            infos[b].update(self._finished_episode(int(b)))
            self._reset_slot(int(b))
        self._write_observation(rows)
        return self.observation, reward, done, infos

    # ----------------------------------------------------------------------------------------------- internals
    def _allocate(self, n_tasks: int, n_jobs: int, n_edges: int) -> None:
        """(Re)allocate the per-slot arrays for ``n_tasks`` / ``n_jobs`` / ``n_edges``, keeping what they hold."""
        B, P, Q = self.n_envs, self.encoder.max_pes, self.queue_capacity
        tables = kernels.allocate_tables((B,), n_tasks, P, n_jobs, n_edges)
        state = kernels.allocate_state((B,), n_tasks, P, n_jobs, Q)
        encoding, observation, window = self.encoder.allocate((B,), n_tasks, n_jobs, self.mode)
        slot_of_task = np.full((B, n_tasks), -1, dtype=np.int64)
        if self._capacity != (0, 0, 0):
            tables, state, encoding = (grown(self.tables, tables), grown(self.state, state), grown(self.encoding, encoding))
            observation, window = self._observation, self._window
        self.tables, self.state, self.encoding = tables, state, encoding
        self._observation, self._window, self._slot_of_task = observation, window, slot_of_task
        self.observation = observation._asdict()
        self._capacity = (n_tasks, n_jobs, n_edges)

    def _reset_slot(self, b: int) -> None:
        instance = self.source.draw(self._rngs[b], None)
        needed = (instance.n_tasks, instance.n_jobs, len(instance.edges))
        if any(n > have for n, have in zip(needed, self._capacity)):
            self._allocate(*(max(n, have) for n, have in zip(needed, self._capacity)))
        self.instances[b] = instance
        tables, state = slot_views(self.tables, b), slot_views(self.state, b)
        kernels.fill_tables(tables, instance)
        scale = self.encoder.reset(slot_views(self.encoding, b), instance)
        self._reward_scale[b] = 1.0 / (instance.n_jobs * scale)
        kernels.reset_run(tables, state, self.queue_capacity)
        self._episode_return[b] = 0.0
        self._episode_length[b] = 0

    def _finished_episode(self, b: int) -> dict:
        instance, n = self.instances[b], self.instances[b].n_tasks
        state = self.state
        solution = SocDagSolution(state.pe[b, :n].copy(), state.start_us[b, :n].copy(), state.end_us[b, :n].copy())
        return {
            "objective": objective(instance, solution),
            "instance": instance.name,
            "solution": solution,
            "episode": {"r": float(self._episode_return[b]), "l": int(self._episode_length[b])},
        }

    def _observe_reset(self) -> None:
        self._write_observation(np.arange(self.n_envs))

    def _write_observation(self, slots: np.ndarray) -> None:
        write_batch_observations(
            slots.astype(np.int64), self.tables, self.state, self.encoding, self.queue_capacity, self.mode == "pair",
            self.binding == "late", self._observation, self._window, self._slot_of_task,
        )

