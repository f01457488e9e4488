"""A schedule of the blocking job shop with swaps and shutdowns, its independent validator, and JSON round-trip."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from schedgym.envs.jobshop.instance import JobShopInstance


@dataclass(eq=False)
class BlockingJobShopSolution:
    """Start time of every operation in a blocking shop; its completion follows from the shutdowns.

    Attributes:
        instance_name: name of the instance this schedule is for.
        start_times: int64 ``[n_jobs, n_ops]``: when operation ``o`` of job ``j`` enters its machine. The job holds
            that machine until ``start_times[j, o + 1]`` (its last operation: until it completes).
        shutdowns: ``(machine, start, end)`` intervals in which a machine was down.
        lower_bound: a proven lower bound on the optimal makespan reported by the solver (CP-SAT), if any.
    """

    instance_name: str
    start_times: np.ndarray
    shutdowns: list[tuple[int, int, int]] = field(default_factory=list)
    lower_bound: int | None = None

    def __post_init__(self) -> None:
        self.start_times = np.asarray(self.start_times, dtype=np.int64)
        self.shutdowns = [tuple(int(v) for v in s) for s in self.shutdowns]

    def makespan(self, instance) -> int:
        """Completion time of the last operation (``instance``: a BlockingJobShopInstance or JobShopInstance)."""
        return int(completion_times(shop_of(instance), self).max())

    def to_dict(self) -> dict:
        return {
            "problem": "jobshop-blocking",
            "instance": self.instance_name,
            "start_times": self.start_times.tolist(),
            "shutdowns": [list(s) for s in self.shutdowns],
            "lower_bound": self.lower_bound,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BlockingJobShopSolution":
        if data.get("problem") != "jobshop-blocking" or "start_times" not in data:
            raise ValueError("not a blocking job-shop solution: expected a JSON object with problem 'jobshop-blocking' and 'start_times'")
        return cls(data["instance"], np.array(data["start_times"], dtype=np.int64), [tuple(s) for s in data.get("shutdowns", [])], data.get("lower_bound"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def shop_of(instance) -> JobShopInstance:
    """The job shop (machines, durations) of a BlockingJobShopInstance, or the JobShopInstance itself."""
    return getattr(instance, "jobshop", instance)


def completion_times(instance: JobShopInstance, solution: BlockingJobShopSolution) -> np.ndarray:
    """int64 ``[n_jobs, n_ops]``: when each operation completes, its work paused by every shutdown of its machine
    that it meets (preempt-resume). Computed here, apart from the simulator, for the validator."""
    down: dict[int, list[tuple[int, int]]] = {}
    for m, s, e in sorted(solution.shutdowns):
        down.setdefault(m, []).append((s, e))
    ends = np.zeros_like(solution.start_times)
    for (j, o), start in np.ndenumerate(solution.start_times):
        t, work = int(start), int(instance.durations[j, o])
        for s, e in down.get(int(instance.machines[j, o]), []):
            if e <= t or work == 0:
                continue
            if s >= t + work:
                break
            work -= max(0, s - t)
            t = e
        ends[j, o] = t + work
    return ends


def validate_blocking(instance, solution: BlockingJobShopSolution) -> list[str]:
    """Every violated constraint of a blocking schedule as a sentence; an empty list means it is feasible.

    Checks: one start per operation, starts >= 0, the shutdowns are the instance's, no operation starts on a
    machine that is down, job precedence (an operation starts once the previous one completed), and no two jobs
    holding a machine at once, where a job holds the machine of operation ``o`` from its start until the start of
    operation ``o + 1`` (the last one: until it completes). Holding intervals are half-open, so jobs that hand
    machines over at the same instant (a swap cycle) do not conflict.
    """
    shop = shop_of(instance)
    starts = np.asarray(solution.start_times)
    expected = (shop.n_jobs, shop.n_ops)
    if starts.shape != expected:
        return [f"start_times has shape {starts.shape}, expected one start per operation {expected}"]
    violations = []
    expected_shutdowns = sorted(getattr(instance, "shutdowns", ()))
    if sorted(solution.shutdowns) != expected_shutdowns:
        violations.append(f"the solution's {len(solution.shutdowns)} shutdowns are not the instance's {len(expected_shutdowns)}")
    ends = completion_times(shop, solution)
    holds: dict[int, list[tuple[int, int, str]]] = {}
    for j in range(shop.n_jobs):
        for o in range(shop.n_ops):
            machine, start = int(shop.machines[j, o]), int(starts[j, o])
            if start < 0:
                violations.append(f"job {j} op {o} starts at {start} < 0")
            if any(s <= start < e for m, s, e in solution.shutdowns if m == machine):
                violations.append(f"job {j} op {o} starts at {start} while machine {machine} is down")
            if o > 0 and start < ends[j, o - 1]:
                violations.append(f"job {j} op {o} starts at {start} before op {o - 1} completes at {ends[j, o - 1]}")
            release = int(starts[j, o + 1]) if o + 1 < shop.n_ops else int(ends[j, o])
            holds.setdefault(machine, []).append((start, release, f"job {j} op {o}"))
    for machine, intervals in holds.items():
        intervals.sort()
        for (s1, e1, a), (s2, e2, b) in zip(intervals, intervals[1:]):
            if s2 < e1:
                violations.append(f"machine {machine}: {a} holds it on [{s1}, {e1}) and {b} enters at {s2}")
    return violations
