"""A job-shop schedule, its independent validator, its objective, and JSON round-trip."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.envs.jobshop.instance import JobShopInstance


@dataclass(eq=False)
class JobShopSolution:
    """Start time of every operation.

    Attributes:
        instance_name: name of the instance this schedule is for.
        start_times: int64 array ``[n_jobs, n_ops]``; operation ``o`` of job ``j`` runs on
            ``[start_times[j, o], start_times[j, o] + durations[j, o])``.
        machine_downtime: intervals ``(machine, start, end)`` in which a machine was down (random interruptions);
            no operation may overlap them. Empty for the static problem.
        lower_bound: a proven lower bound on the optimal makespan reported by the solver (CP-SAT), if any.
    """

    instance_name: str
    start_times: np.ndarray
    machine_downtime: list[tuple[int, int, int]] = field(default_factory=list)
    lower_bound: int | None = None

    def __post_init__(self) -> None:
        self.start_times = np.asarray(self.start_times, dtype=np.int64)

    def makespan(self, instance: JobShopInstance) -> int:
        """Completion time of the last operation."""
        return int((self.start_times + instance.durations).max())

    def to_dict(self) -> dict:
        return {
            "problem": "jobshop",
            "instance": self.instance_name,
            "start_times": self.start_times.tolist(),
            "machine_downtime": [list(map(int, d)) for d in self.machine_downtime],
            "lower_bound": self.lower_bound,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "JobShopSolution":
        if data.get("problem", "jobshop") != "jobshop" or "start_times" not in data:
            raise ValueError("not a job-shop solution: expected a JSON object with problem 'jobshop' and 'start_times'")
        return cls(
            instance_name=data["instance"],
            start_times=np.array(data["start_times"], dtype=np.int64),
            machine_downtime=[tuple(d) for d in data.get("machine_downtime", [])],
            lower_bound=data.get("lower_bound"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "JobShopSolution":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "JobShopSolution":
        with open(path) as handle:
            return cls.from_json(handle.read())


def validate(instance: JobShopInstance, solution: JobShopSolution) -> list[str]:
    """Every violated constraint of ``solution`` as a sentence; an empty list means the schedule is feasible.

    Checks, written independently of the simulator: one start time per operation (shape), non-negative starts,
    job precedence, no two operations overlapping on a machine, and no operation overlapping a machine's downtime.
    Durations are taken from the instance, so a schedule respects them by construction of the intervals.
    """
    starts = np.asarray(solution.start_times)
    expected = (instance.n_jobs, instance.n_ops)
    if starts.shape != expected:
        return [f"start_times has shape {starts.shape}, expected one start per operation {expected}"]
    violations = []
    ends = starts + instance.durations
    for j in range(instance.n_jobs):
        for o in range(instance.n_ops):
            if starts[j, o] < 0:
                violations.append(f"job {j} op {o} starts at {starts[j, o]} < 0")
            if o > 0 and starts[j, o] < ends[j, o - 1]:
                violations.append(f"job {j} op {o} starts at {starts[j, o]} before op {o - 1} ends at {ends[j, o - 1]}")
    for m in range(instance.n_machines):
        intervals = [(int(starts[j, o]), int(ends[j, o]), f"job {j} op {o}") for j, o in zip(*np.nonzero(instance.machines == m))]
        intervals += [(s, e, "downtime") for mm, s, e in solution.machine_downtime if mm == m]
        intervals.sort()
        for k, (s2, e2, b) in enumerate(intervals):
            for s1, e1, a in intervals[:k]:
                if max(s1, s2) < min(e1, e2):
                    violations.append(f"machine {m}: {a} [{s1}, {e1}) overlaps {b} [{s2}, {e2})")
    return violations


def makespan(instance: JobShopInstance, solution: JobShopSolution) -> int:
    return solution.makespan(instance)
