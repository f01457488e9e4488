"""The Gymnasium env of the blocking job shop with swaps and shutdowns, ``schedgym/BlockingJobShop-v0``."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.env_batch import EnvBatch
from schedgym.envs.jobshop.blocking import BlockingJobShopInstance, BlockingJobShopSimulator, draw_shutdowns
from schedgym.envs.jobshop.env import source_and_encoder
from schedgym.envs.jobshop.generator import TaillardGenerator
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.graphs.jobshop_blocking import BlockingEncoder


class BlockingJobShopEnv(gym.Env):
    """The blocking job shop with swaps and random machine shutdowns (ISBJSSP), one move per step.

    ## Description
    A job holds the machine of its operation until it enters the machine of its next one (no buffers); jobs blocked
    on a cycle of machines may swap; machines shut down at random, pausing the running operation, which resumes
    after the repair (see :mod:`schedgym.envs.jobshop.blocking_kernels`). The shop runs in time: at each step some
    jobs can move now, and the agent picks one; time moves on by itself when none can. The objective is the
    makespan.

    ## Action Space
    ``Discrete(max_jobs)``: the job that starts its next operation now (a job of a swap cycle moves its cycle). The
    legal actions are the jobs that can move now (``action_masks()`` and the observation's ``action_mask``; per
    swap cycle only its lowest-numbered job, as every one of them makes the same move); any other raises
    ``ValueError``.

    ## Observation Space
    The dispatching graph of ``schedgym/JobShop-v0`` (:class:`schedgym.graphs.jobshop_blocking.BlockingEncoder`),
    so the job-shop GNN reads it unchanged. It shows only what has happened: a shutdown is seen once it begins.

    ## Starting State
    An empty shop at time 0 on an instance drawn at reset (from the generator, uniformly from the list, or the one
    given; ``reset(options={"instance": inst})`` forces one), with shutdowns drawn at ``shutdown_rate``, or the
    shutdowns of a :class:`BlockingJobShopInstance`.

    ## Reward
    Minus the time that passes until the next decision (or the end), so the undiscounted return is minus the
    makespan (divided by the instance's trivial lower bound with ``normalize_reward=True``).

    ## Episode End
    Terminates when every job has finished; never truncates.

    ## Information
    ``time`` (now), ``instance`` (name) every step; at termination ``makespan`` and ``solution`` (a
    :class:`~schedgym.envs.jobshop.blocking_solution.BlockingJobShopSolution`).

    ## Arguments
    ``gym.make("schedgym/BlockingJobShop-v0", instances="ta01", shutdown_rate=0.05)``; ``instances`` as for
    ``schedgym/JobShop-v0``, or BlockingJobShopInstance(s) with their own shutdowns; ``shutdown_rate``:
    shutdowns per machine per mean operation duration (an operation of mean length meets one with probability
    about that), or a list of rates, one drawn per episode; ``repair_time``: their mean length (default: the mean operation duration); ``skip_forced``: a
    single legal move is made by itself; ``max_jobs`` / ``max_ops`` / ``max_machines`` set the padding.

    ## References
    Mascis & Pacciarelli, Job-shop scheduling with blocking and no-wait constraints, EJOR 143(3), 2002.
    Wong et al., Generating dispatching rules for the interrupting swap-allowed blocking job shop problem using
    graph neural network and reinforcement learning, ASME J. Manufacturing Science and Engineering 146(1), 2024.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        instances: JobShopInstance | BlockingJobShopInstance | Sequence | TaillardGenerator | str = "ft06",
        *,
        shutdown_rate: float | Sequence[float] = 0.0,
        repair_time: float | None = None,
        max_jobs: int | None = None,
        max_ops: int | None = None,
        max_machines: int | None = None,
        skip_forced: bool = False,
        normalize_reward: bool = False,
    ) -> None:
        self.shutdown_rates = tuple(float(r) for r in (shutdown_rate if isinstance(shutdown_rate, Sequence) else (shutdown_rate,)))
        if not self.shutdown_rates or min(self.shutdown_rates) < 0:
            raise ValueError(f"shutdown_rate must be one rate >= 0 or a list of them, got {shutdown_rate!r}")
        self.source, padding = source_and_encoder(instances, max_jobs, max_ops, max_machines, instance_type=(JobShopInstance, BlockingJobShopInstance))
        self.encoder = BlockingEncoder(padding.max_jobs, padding.max_ops, padding.max_machines)
        self.repair_time = repair_time
        self.skip_forced = skip_forced
        self.normalize_reward = normalize_reward
        self.observation_space = self.encoder.observation_space
        self.action_space = MaskedDiscrete(self.encoder.max_jobs, self.action_masks)
        self.sim: BlockingJobShopSimulator | None = None
        self._candidates = np.zeros(0, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        drawn = self.source.draw(self.np_random, options)
        if not isinstance(drawn, BlockingJobShopInstance):
            rate = self.shutdown_rates[int(self.np_random.integers(len(self.shutdown_rates)))]
            drawn = BlockingJobShopInstance(drawn, tuple(draw_shutdowns(drawn, rate, self.np_random, self.repair_time)), rate)
        self.sim = BlockingJobShopSimulator(drawn)
        self.encoder.reset(self.sim)
        self._reward_scale = 1.0 / drawn.trivial_lower_bound() if self.normalize_reward else 1.0
        self._candidates = self.sim.settle(self.skip_forced)
        return self._observation(), self._info()

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        before = self.sim.now
        self.sim.move(int(action))
        self._candidates = self.sim.settle(self.skip_forced)
        reward = -float(self.sim.now - before) * self._reward_scale
        info = self._info()
        if self.sim.done:
            info["makespan"] = self.sim.makespan
            info["solution"] = self.sim.solution()
        return self._observation(), reward, self.sim.done, False, info

    def action_masks(self) -> np.ndarray:
        """bool ``[max_jobs]``: the jobs that can move now (sb3-contrib's MaskablePPO reads this)."""
        mask = np.zeros(self.encoder.max_jobs, dtype=bool)
        mask[: len(self._candidates)] = self._candidates
        return mask

    def _observation(self) -> dict[str, np.ndarray]:
        return self.encoder.encode(self.sim, self._candidates)

    def _info(self) -> dict:
        return {"time": self.sim.now, "instance": self.sim.instance.name}


class BlockingJobShopBatch(EnvBatch):
    """``n_envs`` blocking-shop envs stepped together, with stacked observations and auto-reset (the batched
    trainer's and SB3's engine; the compiled kernels do a move's work, the loop over slots only dispatches)."""

    def __init__(self, instances, n_envs: int, *, seed: int | None = None, **env_options) -> None:
        super().__init__([BlockingJobShopEnv(instances, **env_options) for _ in range(int(n_envs))], seed=seed)
