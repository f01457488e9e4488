"""A solver for the built-in jobshop problem, written against schedgym's public env: dispatch a uniformly random
ready operation at every decision (a floor any learned dispatcher must clear)."""

from __future__ import annotations

import numpy as np

from schedgym.envs.jobshop import JobShopEnv, JobShopInstance, JobShopSolution
from schedgym.registry import register_solver


class RandomDispatch:
    name = "random-dispatch"

    def solve(self, instance: JobShopInstance, *, time_limit: float | None = None, seed: int | None = None) -> JobShopSolution:
        env = JobShopEnv(instance)
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        while True:
            _, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
            if terminated:
                return info["solution"]


def register() -> None:
    """The ``schedgym.solvers`` entry point."""
    register_solver("jobshop", "random-dispatch", lambda **_: RandomDispatch(), "uniformly random ready operation (example plugin)")
