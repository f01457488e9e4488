"""Single machine, total weighted completion time (1 || sum w_j C_j): jobs with a processing time and a weight run
one after the other on one machine; the order that minimizes sum w_j C_j sorts the jobs by p_j / w_j (Smith's
WSPT rule, 1956), which gives every instance its optimum as a bound.

Registered as the problem ``singlemachine`` with the env ``schedgym_example/SingleMachine-v0`` and the solvers
``wspt`` (optimal) and ``spt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from schedgym.registry import Problem, register_problem, register_solver

ENV_ID = "schedgym_example/SingleMachine-v0"


@dataclass(frozen=True)
class SingleMachineInstance:
    """``processing_time`` and ``weight``: int ``[n_jobs]``, both positive."""

    name: str
    processing_time: np.ndarray
    weight: np.ndarray

    @property
    def n_jobs(self) -> int:
        return len(self.processing_time)


@dataclass
class SingleMachineSolution:
    """``order``: the job indices in the order they run."""

    order: list[int]

    def to_dict(self) -> dict:
        return {"order": [int(j) for j in self.order]}

    @classmethod
    def from_dict(cls, data: dict) -> "SingleMachineSolution":
        return cls(list(data["order"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def generate(name: str, n_jobs: int, seed: int) -> SingleMachineInstance:
    """Processing times in [1, 99], weights in [1, 9]."""
    rng = np.random.default_rng(seed)
    return SingleMachineInstance(name, rng.integers(1, 100, n_jobs), rng.integers(1, 10, n_jobs))


SUITE = [generate(f"sm20-{i:02d}", 20, seed=i) for i in range(10)]


def load_suite(name: str) -> list[SingleMachineInstance]:
    if name == "sm20":
        return list(SUITE)
    by_name = {inst.name: inst for inst in SUITE}
    if name in by_name:
        return [by_name[name]]
    raise KeyError(f"unknown singlemachine suite or instance {name!r}; choose sm20 or one of {', '.join(by_name)}")


def validate(instance: SingleMachineInstance, solution: SingleMachineSolution) -> list[str]:
    """The order must run every job exactly once."""
    if sorted(solution.order) != list(range(instance.n_jobs)):
        return [f"the order must hold each of the {instance.n_jobs} jobs exactly once, got {solution.order}"]
    return []


def weighted_completion(instance: SingleMachineInstance, order: list[int]) -> float:
    completion = np.cumsum(instance.processing_time[order])
    return float(np.dot(instance.weight[order], completion))


def wspt_order(instance: SingleMachineInstance) -> list[int]:
    return np.lexsort((np.arange(instance.n_jobs), instance.processing_time / instance.weight)).tolist()


class RuleSolver:
    """Orders the jobs by ``key`` (``wspt``: p_j / w_j; ``spt``: p_j)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def solve(self, instance: SingleMachineInstance, *, time_limit: float | None = None, seed: int | None = None) -> SingleMachineSolution:
        if self.name == "wspt":
            return SingleMachineSolution(wspt_order(instance))
        return SingleMachineSolution(np.lexsort((np.arange(instance.n_jobs), instance.processing_time)).tolist())


class SingleMachineEnv(gym.Env):
    """Pick the next job to run. Observation: ``[n_jobs, 3]`` float32 rows (processing time / 100, weight / 10,
    1 if already run); reward: minus the weighted completion time of the job just run, over 1000."""

    metadata = {"render_modes": []}

    def __init__(self, instance: SingleMachineInstance | None = None) -> None:
        self.instance = instance or SUITE[0]
        n = self.instance.n_jobs
        self.observation_space = spaces.Box(0.0, 1.0, shape=(n, 3), dtype=np.float32)
        self.action_space = spaces.Discrete(n)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.order: list[int] = []
        self.time = 0
        return self._observe(), {}

    def action_masks(self) -> np.ndarray:
        mask = np.ones(self.instance.n_jobs, dtype=bool)
        mask[self.order] = False
        return mask

    def step(self, action):
        job = int(action)
        if not self.action_masks()[job]:
            raise ValueError(f"job {job} has already run; pick one of {np.flatnonzero(self.action_masks()).tolist()}")
        self.order.append(job)
        self.time += int(self.instance.processing_time[job])
        reward = -float(self.instance.weight[job] * self.time) / 1000.0
        terminated = len(self.order) == self.instance.n_jobs
        info = {"solution": SingleMachineSolution(list(self.order))} if terminated else {}
        return self._observe(), reward, terminated, False, info

    def _observe(self) -> np.ndarray:
        done = np.zeros(self.instance.n_jobs, dtype=np.float32)
        done[self.order] = 1.0
        return np.stack([self.instance.processing_time / 100.0, self.instance.weight / 10.0, done], axis=1).astype(np.float32)


def register() -> None:
    """The ``schedgym.envs`` entry point: the env id, the problem and its two rules."""
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=SingleMachineEnv)
    register_problem(
        Problem(
            name="singlemachine",
            env_id=ENV_ID,
            suites={"sm20": "10 generated instances of 20 jobs (seeds 0-9)"},
            load_suite=load_suite,
            validate=validate,
            evaluate=lambda inst, solution: (weighted_completion(inst, solution.order), {}),
            bounds=lambda inst: (weighted_completion(inst, wspt_order(inst)),) * 2,
            solution_from_dict=SingleMachineSolution.from_dict,
            default_solver="wspt",
        )
    )
    register_solver("singlemachine", "wspt", lambda **_: RuleSolver("wspt"), "Smith's rule: by processing time / weight (optimal)")
    register_solver("singlemachine", "spt", lambda **_: RuleSolver("spt"), "shortest processing time first")
