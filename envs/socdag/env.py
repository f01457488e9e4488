"""The Gymnasium socdag environment ``schedgym/SocDag-v0``."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.socdag.catalog import DEFAULT_SOC
from schedgym.envs.socdag.generator import StreamGenerator
from schedgym.envs.socdag.instance import SocDagInstance
from schedgym.envs.socdag.render import gantt_rgb
from schedgym.envs.socdag.simulator import DEFAULT_QUEUE_CAPACITY, LATE_BINDING_CAPACITY, SocDagSimulator
from schedgym.envs.socdag.solution import objective
from schedgym.envs.socdag.suites import resolve_suite
from schedgym.envs.sources import InstanceSource
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.graphs.socdag import SocDagEncoder, write_observation

MODES = ("pair", "order")
BINDINGS = ("early", "late")


def source_and_encoder(
    instances: SocDagInstance | Sequence[SocDagInstance] | StreamGenerator | str, max_tasks: int, max_pes: int | None
) -> tuple[InstanceSource, SocDagEncoder]:
    """The instance source of ``instances`` and the encoder sized for it (``max_pes`` default: the largest SoC),
    as ``SocDagEnv`` and ``SocDagBatch`` both build them."""
    source = InstanceSource(instances, instance_type=SocDagInstance, generator_type=StreamGenerator, load=resolve_suite)
    pes = DEFAULT_SOC.n_pes if source.generator else source.largest(lambda inst: inst.n_pes)
    return source, SocDagEncoder(max_tasks, max_pes or pes)


class SocDagEnv(gym.Env):
    """Task DAGs arriving on a heterogeneous SoC; one task committed to one PE per step.

    ## Description
    Jobs (copies of application DAGs) arrive over time. Whenever a task is ready (its parents have finished) and a
    PE that can run it has room in its queue, the agent commits one ready task to one PE; the simulator then runs
    events (arrivals, completions with noisy actual run times) until the next such decision. See
    :class:`schedgym.envs.socdag.SocDagSimulator`. With ``binding="early"`` (default) each PE queues up to
    ``queue_capacity`` tasks; with ``binding="late"`` a PE holds only the task it runs and the agent may also wait.

    ## Action Space
    ``mode="pair"`` (default): ``Discrete(max_tasks * max_pes + 1)``, action ``slot * max_pes + pe`` commits the
    ready task in window slot ``slot`` to ``pe``; unsupported pairs and PEs with a full queue ("busy") are masked.
    ``mode="order"``: ``Discrete(max_tasks + 1)``, the agent only picks the ready task; it goes to its earliest
    expected-finish PE. The last action, :attr:`wait_action`, commits nothing and moves on to the next event; it is
    allowed only in late binding while an event is still to come. Illegal actions raise ``ValueError``.

    ## Observation Space
    A ``Dict`` of padded graph tensors (tasks, jobs, PEs, DAG edges, per-pair features), see
    :class:`schedgym.graphs.socdag.SocDagEncoder`, plus ``action_mask`` (int8, one per action: the mask below).

    ## Starting State
    Time 0 of an instance drawn at reset: from the generator (:class:`StreamGenerator`), uniformly from the list,
    or the one given; ``reset(options={"instance": inst})`` forces one.

    ## Reward
    Minus the job-time accrued since the last step (jobs in the system x elapsed time), divided by
    ``n_jobs x time scale`` (mean fastest task run time), so the return is minus the mean job duration in
    time-scale units; for one static DAG it is minus the makespan.

    ## Episode End
    Terminates when every task has finished; never truncates.

    ## Information
    ``now_us``, ``jobs_in_system``, ``instance`` every step; at termination ``solution`` (a
    :class:`SocDagSolution`) and ``objective`` (us).

    ## Arguments
    ``gym.make("schedgym/SocDag-v0", instances="socdag-stream-high")`` (a suite, instance name or STG path),
    ``instances=StreamGenerator()``, ``mode="order"``, ``binding="late"``, ``max_tasks`` (window size, default 64),
    ``max_pes`` (default: the largest SoC), ``queue_capacity`` (early binding: tasks a PE may hold, running one
    included, default 8).

    ## References
    Topcuoglu, Hariri & Wu, Performance-effective and low-complexity task scheduling for heterogeneous computing,
    IEEE TPDS 13(3), 2002. Sung et al., DeepSoCS: a neural scheduler for heterogeneous system-on-chip resource
    scheduling, Electronics 9(6), 2020. Arda et al., DS3: a system-level domain-specific system-on-chip simulation
    framework, IEEE TC 69(8), 2020.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        instances: SocDagInstance | Sequence[SocDagInstance] | StreamGenerator | str = "socdag-stream-high",
        *,
        mode: str = "pair",
        binding: str = "early",
        max_tasks: int = 64,
        max_pes: int | None = None,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        render_mode: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
        if binding not in BINDINGS:
            raise ValueError(f"unknown binding {binding!r}; choose one of {BINDINGS}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.source, self.encoder = source_and_encoder(instances, max_tasks, max_pes)
        self.mode, self.binding = mode, binding
        self.queue_capacity = LATE_BINDING_CAPACITY if binding == "late" else queue_capacity
        self.render_mode = render_mode
        #: The action that waits for the next event (the last one).
        self.wait_action = self.encoder.n_actions(mode) - 1
        self.action_space = MaskedDiscrete(self.wait_action + 1, self.action_masks)
        self.observation_space = gym.spaces.Dict(
            {**self.encoder.observation_space.spaces, "action_mask": gym.spaces.Box(0, 1, (self.wait_action + 1,), np.int8)}
        )
        self.sim: SocDagSimulator | None = None
        self._obs: dict[str, np.ndarray] = {}
        self._window = np.zeros(0, dtype=np.int64)

    # ----------------------------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        instance = self.source.draw(self.np_random, options)
        self.sim = SocDagSimulator(instance, self.queue_capacity)
        self._encoding, self._observation, self._window = self.encoder.allocate((), instance.n_tasks, instance.n_jobs, self.mode)
        self._slot_of_task = np.full(instance.n_tasks, -1, dtype=np.int64)
        self.time_scale_us = self.encoder.reset(self._encoding, instance)
        self._reward_scale = 1.0 / (instance.n_jobs * self.time_scale_us)
        return self._observe(), self._info()

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        move = self.decode(int(action))
        job_time_before = self.sim.job_time_us
        if move is None:
            self.sim.wait()
        else:
            self.sim.commit(*move)
        reward = -(self.sim.job_time_us - job_time_before) * self._reward_scale
        terminated = self.sim.done
        info = self._info()
        if terminated:
            info["solution"] = self.sim.solution()
            info["objective"] = objective(self.sim.instance, info["solution"])
            observation = {key: value.copy() for key, value in self._obs.items()}
        else:
            observation = self._observe()
        return observation, reward, terminated, False, info

    def decode(self, action: int) -> tuple[int, int] | None:
        """Action -> (global task id, PE), or None for the wait action. Raises ``ValueError`` for an action the
        mask forbids."""
        mask = self.action_masks()
        if not (0 <= action < len(mask)) or not mask[action]:
            legal = np.flatnonzero(mask).tolist()
            raise ValueError(
                f"invalid action {action!r} in mode {self.mode!r}, {self.binding} binding: the legal actions now are "
                f"{legal[:20]}{'...' if len(legal) > 20 else ''} (waiting, action {self.wait_action}, needs late binding and an event to come)"
            )
        if action == self.wait_action:
            return None
        if self.mode == "pair":
            slot, pe = divmod(action, self.encoder.max_pes)
        else:
            slot, pe = action, int(self._obs["eft_pe"][action])
        return int(self._window[slot]), pe

    def window_slot(self, task: int) -> int:
        """The window slot (action index in ``order`` mode) of a ready task shown in the observation.

        Raises:
            ValueError: if the task is not in the window.
        """
        slots = np.flatnonzero(self._window == task)
        if slots.size == 0:
            raise ValueError(f"task {task} is not in the observation's window {self._window[self._window >= 0].tolist()}")
        return int(slots[0])

    def action_masks(self) -> np.ndarray:
        """bool mask of the actions allowed now (sb3-contrib's MaskablePPO reads this)."""
        if not self._obs:
            return np.zeros(self.action_space.n, dtype=bool)
        return self._obs["action_mask"].astype(bool)

    def render(self):
        if self.render_mode == "rgb_array" and self.sim is not None:
            return gantt_rgb(self.sim.instance, self.sim.solution())
        return None

    # ----------------------------------------------------------------------------------------------- helpers
    def _observe(self) -> dict[str, np.ndarray]:
        write_observation(
            self.sim.tables, self.sim.state, self._encoding, self.queue_capacity, self.mode == "pair", self.binding == "late",
            self._observation, self._window, self._slot_of_task,
        )
        self._obs = {key: value.copy() for key, value in self._observation._asdict().items()}
        return self._obs

    def _info(self) -> dict:
        return {"now_us": self.sim.now_us, "jobs_in_system": self.sim.jobs_in_system, "instance": self.sim.instance.name}
