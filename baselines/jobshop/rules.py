"""Priority dispatching rules for the job shop, all driven through :class:`JobShopSimulator`.

Each rule scores the candidate jobs (by default those that can start earliest: a non-delay schedule) and
dispatches the best one; ties go to the lowest job index. Scores are "smaller is better".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from schedgym.envs.jobshop import ActionFilter, JobShopInstance, JobShopSimulator, JobShopSolution

#: score(simulator, rng) -> float array [J]; the candidate with the smallest score is dispatched.
Score = Callable[[JobShopSimulator, np.random.Generator], np.ndarray]


def _spt(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    return sim.next_duration.astype(float)


def _lpt(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    return -sim.next_duration.astype(float)


def _mwkr(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    return -sim.remaining_work().astype(float)


def _mor(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    return (sim.next_op - sim.instance.n_ops).astype(float)


def _fifo(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    return sim.job_ready.astype(float)


def _fdd_mwkr(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    # flow due date of the next operation (work done + its own duration) over the work remaining including it
    return (sim.done_work() + sim.next_duration) / np.maximum(sim.remaining_work(), 1)


def _random(sim: JobShopSimulator, rng: np.random.Generator) -> np.ndarray:
    return rng.random(sim.instance.n_jobs)


RULE_SCORES: dict[str, tuple[Score, str]] = {
    "spt": (_spt, "shortest processing time of the next operation"),
    "lpt": (_lpt, "longest processing time of the next operation"),
    "mwkr": (_mwkr, "most work remaining in the job"),
    "mor": (_mor, "most operations remaining in the job"),
    "fifo": (_fifo, "job that has waited longest (earliest ready time)"),
    "fdd-mwkr": (_fdd_mwkr, "smallest flow due date over work remaining"),
    "random": (_random, "uniformly random candidate"),
}


@dataclass
class DispatchingRule:
    """A solver that builds one schedule by always dispatching the best-scored candidate job."""

    name: str
    action_filter: ActionFilter = "non-delay"

    def __post_init__(self) -> None:
        if self.name not in RULE_SCORES:
            raise ValueError(f"unknown dispatching rule {self.name!r}; choose one of {', '.join(RULE_SCORES)}")
        self.score: Score = RULE_SCORES[self.name][0]

    def choose(self, sim: JobShopSimulator, rng: np.random.Generator) -> int:
        """The job this rule dispatches next in the simulator's current state."""
        scores = np.where(sim.candidate_jobs(self.action_filter), self.score(sim, rng), np.inf)
        return int(np.argmin(scores))

    def solve(
        self,
        instance: JobShopInstance,
        *,
        time_limit: float | None = None,
        seed: int | None = None,
        machine_downtime: list[tuple[int, int, int]] | None = None,
    ) -> JobShopSolution:
        rng = np.random.default_rng(seed)
        sim = JobShopSimulator(instance, machine_downtime)
        while not sim.done:
            sim.dispatch(self.choose(sim, rng))
        return sim.solution()
