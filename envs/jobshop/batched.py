"""The batched job-shop engine: B schedules in stacked numpy arrays, advanced together by one compiled call.

    batch = JobShopBatch(TaillardGenerator([(15, 15)]), n_envs=256, seed=0)
    obs = batch.reset()
    obs, reward, done, infos = batch.step(actions)  # actions: int ``[B]``, one job per slot

Every slot runs the scheduling kernels of :mod:`schedgym.envs.jobshop.kernels` (the ones
:class:`~schedgym.envs.jobshop.simulator.JobShopSimulator` and so every rule and the Gymnasium env run on) and is
encoded by the same compiled :func:`~schedgym.graphs.jobshop.write_state_features` as ``JobShopEnv``'s
observations, so a slot's trajectory is the env's trajectory with the same instance and actions. A slot whose
schedule completes is reset at once with a fresh instance (auto-reset); ``infos[b]`` then carries the finished
episode. Slots may hold instances of different sizes: arrays are padded to the largest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from schedgym.envs.batching import SlotBatch
from schedgym.envs.jobshop import kernels
from schedgym.envs.jobshop.generator import TaillardGenerator
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.env import source_and_encoder
from schedgym.envs.jobshop.interruptions import draw_downtime
from schedgym.envs.jobshop.simulator import ACTION_FILTERS, ActionFilter, machine_capacity
from schedgym.envs.jobshop.solution import JobShopSolution
from schedgym.graphs.jobshop import episode_constants, write_batch_features


class JobShopBatch(SlotBatch):
    """``n_envs`` job-shop episodes stepped in lockstep (the batched twin of ``JobShopEnv``, same options; here
    ``skip_forced`` and ``normalize_reward`` default to True, the training settings).

    Attributes:
        observation: dict of arrays with a leading ``[B]`` axis, the fields of ``JobShopEnv``'s observation
            (see :class:`~schedgym.graphs.jobshop.JobShopEncoder`). Rewritten in place by every :meth:`step`:
            copy what you keep.
        observation_space / action_space: those of one slot (as ``JobShopEnv``'s).
        instances: the instance each slot is scheduling now.
    """

    render_mode = None  # a batch renders nothing: render one slot's instance with JobShopEnv

    def __init__(
        self,
        instances: JobShopInstance | Sequence[JobShopInstance] | TaillardGenerator | str,
        n_envs: int,
        *,
        action_filter: ActionFilter = "giffler-thompson",
        interruption_rate: float = 0.0,
        mean_repair_time: float = 50.0,
        max_jobs: int | None = None,
        max_ops: int | None = None,
        max_machines: int | None = None,
        skip_forced: bool = True,
        normalize_reward: bool = True,
        seed: int | None = None,
    ) -> None:
        if action_filter not in ACTION_FILTERS:
            raise ValueError(f"unknown action_filter {action_filter!r}; choose one of {ACTION_FILTERS}")
        if n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {n_envs}")
        self.source, self.encoder = source_and_encoder(instances, max_jobs, max_ops, max_machines)
        self.n_envs = int(n_envs)
        self.filter_code = ACTION_FILTERS.index(action_filter)
        self.interruption_rate = float(interruption_rate)
        self.mean_repair_time = float(mean_repair_time)
        self.skip_forced = bool(skip_forced)
        self.normalize_reward = bool(normalize_reward)
        self.observation_space: spaces.Dict = self.encoder.observation_space
        self.action_space = spaces.Discrete(self.encoder.max_jobs)
        self._allocate()
        self.seed(seed)

    # ----------------------------------------------------------------------------------------------- API
    def action_masks(self) -> np.ndarray:
        """bool ``[B, max_jobs]``: the allowed actions of every slot."""
        return self.candidate.copy()

    def step(self, actions: np.ndarray, terminal_observations: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Dispatch ``actions[b]`` (a job) in every slot.

        Returns ``(observation, reward, done, infos)``: reward float32 ``[B]`` (minus the makespan increase,
        divided by the trivial lower bound with ``normalize_reward``), done bool ``[B]``; for a slot whose episode
        ended, ``infos[b]`` holds ``makespan``, ``instance``, ``solution`` and ``episode`` (``r``: return, ``l``:
        decisions), with ``terminal_observations`` also ``terminal_observation`` (the state it ended in, as SB3
        expects), and the observation is already the next episode's first.

        Raises:
            ValueError: if ``actions`` is not one action per slot, or names a job that is out of range or finished.
        """
        actions = self._slot_actions(actions, "job")
        rows = np.arange(self.n_envs)
        in_range = (actions >= 0) & (actions < self.encoder.max_jobs)
        legal = in_range & (self.next_op[rows, np.where(in_range, actions, 0)] < self.n_ops)
        if not legal.all():
            b = int(np.argmin(legal))
            raise ValueError(
                f"invalid action {int(actions[b])} in slot {b}: the legal jobs (with an operation left) are "
                f"{np.flatnonzero(self.next_op[b] < self.n_ops[b]).tolist()}"
            )
        makespan_before = self.progress[:, 0].copy()
        kernels.step_batch(
            actions, self.filter_code, self.skip_forced, self.n_jobs, self.n_ops, self.machines, self.durations,
            *self._state(), self.candidate,
        )
        reward = (-(self.progress[:, 0] - makespan_before) * self._reward_scale).astype(np.float32)
        self._episode_return += reward
        self._episode_length += 1
        done = self.progress[:, 1] == self.n_jobs * self.n_ops
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
    def _allocate(self, capacity: int = 1) -> None:
        B, J, O, M = self.n_envs, self.encoder.max_jobs, self.encoder.max_ops, self.encoder.max_machines
        N = J * O
        self.n_jobs = np.zeros(B, dtype=np.int64)
        self.n_ops = np.ones(B, dtype=np.int64)
        self.n_machines = np.zeros(B, dtype=np.int64)
        self.durations = np.zeros((B, J, O), dtype=np.int64)
        self.next_op = np.zeros((B, J), dtype=np.int64)
        self.job_ready = np.zeros((B, J), dtype=np.int64)
        self.next_machine = np.zeros((B, J), dtype=np.int64)
        self.next_duration = np.zeros((B, J), dtype=np.int64)
        self.earliest_start = np.zeros((B, J), dtype=np.int64)
        self.start_times = np.zeros((B, J, O), dtype=np.int64)
        self.machine_starts = np.zeros((B, M, capacity), dtype=np.int64)
        self.machine_ends = np.zeros((B, M, capacity), dtype=np.int64)
        self.machine_ops = np.zeros((B, M, capacity), dtype=np.int64)
        self.machine_count = np.zeros((B, M), dtype=np.int64)
        self.machine_pred = np.zeros((B, N), dtype=np.int64)
        self.machine_work_left = np.zeros((B, M), dtype=np.int64)
        self.progress = np.zeros((B, 2), dtype=np.int64)  # (makespan, n_scheduled) per slot
        self.candidate = np.zeros((B, J), dtype=bool)
        # episode constants of the encoding, per slot
        self._duration_scaled = np.zeros((B, J, O))
        self._work_before = np.zeros((B, J, O))
        self._mean_duration = np.ones(B)
        self._machine_scale = np.ones(B)
        self._reward_scale = np.ones(B)
        self._episode_return = np.zeros(B, dtype=np.float32)
        self._episode_length = np.zeros(B, dtype=np.int64)
        self._downtime: list[list[tuple[int, int, int]]] = [[] for _ in range(B)]
        self.instances: list[JobShopInstance | None] = [None] * B
        self.observation = {
            "op_features": np.zeros((B, N, self.observation_space["op_features"].shape[1]), dtype=np.float32),
            "op_mask": np.zeros((B, N), dtype=np.int8),
            "op_machine": np.zeros((B, N), dtype=np.int64),
            "machine_pred": np.zeros((B, N), dtype=np.int64),
            "machine_features": np.zeros((B, M, self.observation_space["machine_features"].shape[1]), dtype=np.float32),
            "machine_mask": np.zeros((B, M), dtype=np.int8),
            "job_candidate": np.zeros((B, J), dtype=np.int64),
            "action_mask": np.zeros((B, J), dtype=np.int8),
        }
        self.machines = self.observation["op_machine"].reshape(B, J, O)  # the padded instance machines, a view

    def _grow_capacity(self, capacity: int) -> None:
        """Widen the per-machine block arrays to ``capacity`` slots, keeping every slot's schedule."""
        for name, fill in (("machine_starts", kernels.NEVER), ("machine_ends", kernels.NEVER), ("machine_ops", -1)):
            old = getattr(self, name)
            new = np.full(old.shape[:2] + (capacity,), fill, dtype=np.int64)
            new[:, :, : old.shape[2]] = old
            setattr(self, name, new)

    def _state(self, b: int | None = None) -> tuple[np.ndarray, ...]:
        """The state arrays in the order the kernels take them, of all slots (or of slot ``b``)."""
        arrays = (
            self.next_op, self.job_ready, self.next_machine, self.next_duration, self.earliest_start, self.start_times,
            self.machine_starts, self.machine_ends, self.machine_ops, self.machine_count, self.machine_pred,
            self.machine_work_left, self.progress,
        )
        return arrays if b is None else tuple(a[b] for a in arrays)

    def _reset_slot(self, b: int) -> None:
        rng = self._rngs[b]
        instance = self.source.draw(rng, None)
        self.encoder.check_fits(instance)
        downtime = draw_downtime(instance, self.interruption_rate, self.mean_repair_time, rng)
        capacity = machine_capacity(instance, downtime)
        if capacity > self.machine_starts.shape[2]:
            self._grow_capacity(capacity)
        self.instances[b] = instance
        self._downtime[b] = sorted(downtime)
        J, O, M = self.encoder.max_jobs, self.encoder.max_ops, self.encoder.max_machines
        constants = episode_constants(instance, J, O, M)
        obs = self.observation
        obs["op_features"][b] = constants.op_features
        obs["op_mask"][b] = constants.op_mask
        obs["op_machine"][b] = constants.op_machine
        obs["machine_mask"][b] = constants.machine_mask
        # padding nodes, machines and jobs of a smaller instance keep these values: the kernel writes real ones only
        obs["machine_pred"][b] = -1
        obs["machine_features"][b] = 0.0
        obs["job_candidate"][b] = 0
        obs["action_mask"][b] = 0
        self._duration_scaled[b] = constants.duration_scaled
        self._work_before[b] = constants.work_before
        self._mean_duration[b] = constants.mean_duration
        self._machine_scale[b] = constants.machine_scale
        self._reward_scale[b] = 1.0 / instance.trivial_lower_bound() if self.normalize_reward else 1.0
        self.n_jobs[b], self.n_ops[b], self.n_machines[b] = instance.n_jobs, instance.n_ops, instance.n_machines
        self.durations[b] = 0
        self.durations[b, : instance.n_jobs, : instance.n_ops] = instance.durations
        down = np.array(self._downtime[b], dtype=np.int64).reshape(-1, 3)
        state = self._state(b)
        kernels.reset_schedule(
            instance.n_jobs, instance.n_ops, self.machines[b], self.durations[b], down[:, 0].copy(), down[:, 1].copy(), down[:, 2].copy(), *state
        )
        kernels.settle(self.filter_code, self.skip_forced, instance.n_jobs, instance.n_ops, self.machines[b], self.durations[b], *state, self.candidate[b])
        self._episode_return[b] = 0.0
        self._episode_length[b] = 0

    def _finished_episode(self, b: int) -> dict:
        instance = self.instances[b]
        solution = JobShopSolution(instance.name, self.start_times[b, : instance.n_jobs, : instance.n_ops].copy(), list(self._downtime[b]))
        return {
            "makespan": int(self.progress[b, 0]),
            "instance": instance.name,
            "solution": solution,
            "episode": {"r": float(self._episode_return[b]), "l": int(self._episode_length[b])},
        }

    def _observe_reset(self) -> None:
        self._write_observation(np.arange(self.n_envs))

    def _write_observation(self, slots: np.ndarray) -> None:
        obs = self.observation
        write_batch_features(
            slots, self.n_jobs, self.n_ops, self.n_machines, self.machines, self._duration_scaled, self._work_before,
            self._mean_duration, self._machine_scale, self.next_op, self.next_machine, self.earliest_start,
            self.start_times, self.machine_ends, self.machine_count, self.machine_pred, self.machine_work_left,
            self.progress, self.candidate, obs["op_features"], obs["machine_pred"], obs["machine_features"],
            obs["job_candidate"], obs["action_mask"],
        )
