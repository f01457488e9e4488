"""The Gymnasium job-shop environment ``schedgym/JobShop-v0``."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.jobshop.generator import TaillardGenerator
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.interruptions import draw_downtime
from schedgym.envs.jobshop.loaders import load_instance
from schedgym.envs.jobshop.render import gantt_rgb
from schedgym.envs.sources import InstanceSource
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.envs.jobshop.simulator import ACTION_FILTERS, ActionFilter, JobShopSimulator
from schedgym.graphs.jobshop import JobShopEncoder


class JobShopEnv(gym.Env):
    """Job-shop scheduling, one operation dispatched per step.

    ## Description
    Jobs are chains of operations, each on one machine for a fixed time. At every step the agent picks a job; the
    simulator places that job's next operation at the earliest time it fits on its machine (inside an idle gap if
    one is long enough). The episode builds one complete schedule; the objective is the makespan.

    ## Action Space
    ``Discrete(max_jobs)``: the job whose next operation is dispatched. Every job with an operation left is legal;
    any other action raises ``ValueError``. ``action_masks()`` (and the observation's ``action_mask``, which is what
    ``action_space.sample()`` and MaskablePPO draw from) narrows the choice by ``action_filter``: every legal job
    (``"legal"``), the Giffler-Thompson conflict set (``"giffler-thompson"``, the default; every active schedule,
    an optimal one included, stays reachable), or the jobs that can start earliest (``"non-delay"``).

    ## Observation Space
    A ``Dict`` of padded disjunctive-graph tensors, see :class:`schedgym.graphs.jobshop.JobShopEncoder`.

    ## Starting State
    An empty schedule of an instance drawn at reset: from the generator (``TaillardGenerator``), uniformly from the
    list of instances, or the one instance given. ``reset(options={"instance": inst})`` forces one.

    ## Reward
    Minus the increase of the makespan caused by the step, so the undiscounted return is minus the makespan
    (divided by the instance's trivial lower bound, max(longest job, busiest machine), with
    ``normalize_reward=True``, so returns read alike across sizes).

    ## Episode End
    Terminates when every operation is scheduled; never truncates.

    ## Information
    ``makespan`` (of the partial schedule) every step, ``instance`` (name); at termination ``solution`` (a
    :class:`JobShopSolution`).

    ## Arguments
    ``gym.make("schedgym/JobShop-v0", instances="ta01")``, or ``instances=TaillardGenerator([(10, 10), (15, 15)])``;
    ``interruption_rate`` (machine breakdowns per machine per time unit, default 0: off) and
    ``mean_repair_time`` switch on random machine interruptions: each machine's down intervals are drawn at reset
    (Poisson breakdowns, exponential repair times), no operation may run across one, and they appear in the
    solution's ``machine_downtime``. ``max_jobs`` / ``max_ops`` / ``max_machines`` set the padding
    (default: the largest instance). ``skip_forced=True`` dispatches by itself whenever the mask allows a single
    job, so every step is a real choice (an episode then has fewer steps than operations, and what reset dispatches
    is not in the return).

    ## References
    Giffler & Thompson, Algorithms for solving production-scheduling problems, Operations Research 8(4), 1960.
    Zhang et al., Learning to dispatch for job shop scheduling via deep reinforcement learning, NeurIPS 2020.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        instances: JobShopInstance | Sequence[JobShopInstance] | TaillardGenerator | str = "ft06",
        *,
        action_filter: ActionFilter = "giffler-thompson",
        interruption_rate: float = 0.0,
        mean_repair_time: float = 50.0,
        max_jobs: int | None = None,
        max_ops: int | None = None,
        max_machines: int | None = None,
        skip_forced: bool = False,
        normalize_reward: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if action_filter not in ACTION_FILTERS:
            raise ValueError(f"unknown action_filter {action_filter!r}; choose one of {ACTION_FILTERS}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.source, self.encoder = source_and_encoder(instances, max_jobs, max_ops, max_machines)
        self.action_filter = action_filter
        self.interruption_rate = float(interruption_rate)
        self.mean_repair_time = float(mean_repair_time)
        self.skip_forced = skip_forced
        self.normalize_reward = normalize_reward
        self.render_mode = render_mode
        self.observation_space = self.encoder.observation_space
        self.action_space = MaskedDiscrete(self.encoder.max_jobs, self.action_masks)
        self.sim: JobShopSimulator | None = None
        self._candidates = np.zeros(0, dtype=bool)

    # ----------------------------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        instance = self.source.draw(self.np_random, options)
        self.sim = JobShopSimulator(instance, draw_downtime(instance, self.interruption_rate, self.mean_repair_time, self.np_random))
        self.encoder.reset(self.sim)
        self._reward_scale = 1.0 / instance.trivial_lower_bound() if self.normalize_reward else 1.0
        self._candidates = self.sim.settle(self.action_filter, self.skip_forced)
        return self._observation(), self._info()

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        job = int(action)
        legal = self.sim.legal_jobs()
        if not (0 <= job < len(legal)) or not legal[job]:
            raise ValueError(f"invalid action {action!r}: the legal jobs (with an operation left) are {np.flatnonzero(legal).tolist()}")
        makespan_before = self.sim.makespan
        self.sim.dispatch(job)
        self._candidates = self.sim.settle(self.action_filter, self.skip_forced)
        reward = -float(self.sim.makespan - makespan_before) * self._reward_scale
        terminated = self.sim.done
        info = self._info()
        if terminated:
            info["solution"] = self.sim.solution()
        return self._observation(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """bool ``[max_jobs]``: which actions are allowed now (sb3-contrib's MaskablePPO reads this)."""
        mask = np.zeros(self.encoder.max_jobs, dtype=bool)
        mask[: len(self._candidates)] = self._candidates
        return mask

    def render(self):
        if self.render_mode == "rgb_array" and self.sim is not None:
            return gantt_rgb(self.sim.instance, self.sim.solution())
        return None

    # ----------------------------------------------------------------------------------------------- helpers
    def _observation(self) -> dict[str, np.ndarray]:
        return self.encoder.encode(self.sim, self._candidates)

    def _info(self) -> dict:
        return {"makespan": int(self.sim.makespan), "instance": self.sim.instance.name}


def source_and_encoder(
    instances: JobShopInstance | Sequence[JobShopInstance] | TaillardGenerator | str,
    max_jobs: int | None, max_ops: int | None, max_machines: int | None,
    instance_type: type | tuple[type, ...] = JobShopInstance,
) -> tuple[InstanceSource, JobShopEncoder]:
    """Where episodes draw their instances from, and the encoder padded to the largest instance it can draw (a
    generator's largest size), unless ``max_jobs`` / ``max_ops`` / ``max_machines`` say otherwise.
    ``instance_type``: what counts as one instance (anything with ``n_jobs``, ``n_ops``, ``n_machines``)."""
    source = InstanceSource(instances, instance_type=instance_type, generator_type=TaillardGenerator, load=load_instance)
    if source.generator:
        jobs, machines = source.generator.max_jobs, source.generator.max_machines
        ops = machines
    else:
        jobs = source.largest(lambda i: i.n_jobs)
        ops = source.largest(lambda i: i.n_ops)
        machines = source.largest(lambda i: i.n_machines)
    return source, JobShopEncoder(max_jobs or jobs, max_ops or ops, max_machines or machines)
