"""The socdag solution (task -> PE, start, end), its independent validator and its metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from schedgym.envs.socdag.instance import SocDagInstance

#: Slack (us) allowed in time comparisons, for floating-point sums of noisy run times.
TOLERANCE_US = 1e-6


@dataclass
class SocDagSolution:
    """A schedule of every task of an instance.

    Attributes:
        pe: int array ``[n_tasks]``, the PE each task ran on.
        start_us: float array ``[n_tasks]``, start times.
        end_us: float array ``[n_tasks]``, end times (start + actual run time).
        lower_bound_us: a proven lower bound on the objective, if the solver has one (CP-SAT).
    """

    pe: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    lower_bound_us: float | None = None

    def to_dict(self) -> dict:
        return {
            "pe": self.pe.tolist(),
            "start_us": self.start_us.tolist(),
            "end_us": self.end_us.tolist(),
            "lower_bound_us": self.lower_bound_us,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "SocDagSolution":
        return cls(
            np.asarray(data["pe"], dtype=np.int64),
            np.asarray(data["start_us"], dtype=float),
            np.asarray(data["end_us"], dtype=float),
            data.get("lower_bound_us"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def job_durations_us(instance: SocDagInstance, solution: SocDagSolution) -> np.ndarray:
    """Per job: completion of its last task minus its arrival, ``[n_jobs]``."""
    completion = np.maximum.reduceat(solution.end_us, instance.job_first_task[:-1])
    return completion - instance.arrival_us


def metrics(instance: SocDagInstance, solution: SocDagSolution) -> dict[str, float]:
    """``makespan`` (last end - first arrival), ``mean_job_duration`` and ``p95_job_duration`` (us)."""
    durations = job_durations_us(instance, solution)
    return {
        "makespan": float(solution.end_us.max() - instance.arrival_us[0]),
        "mean_job_duration": float(durations.mean()),
        "p95_job_duration": float(np.percentile(durations, 95)),
    }


def objective(instance: SocDagInstance, solution: SocDagSolution) -> float:
    """The makespan for a static instance, the mean job duration for a streaming one (us)."""
    values = metrics(instance, solution)
    return values["mean_job_duration"] if instance.streaming else values["makespan"]


def validate(instance: SocDagInstance, solution: SocDagSolution) -> list[str]:
    """Every violated constraint, in words (empty: the schedule is feasible).

    Checks: one PE, start and end per task; the PE can run the task; end - start equals the task's actual run
    time on that PE; no task starts before its job arrives; a child starts after each parent's end plus the data
    transfer between their PEs; tasks on one PE do not overlap. Shares no code with the simulator.
    """
    n, n_pes = instance.n_tasks, instance.n_pes
    pe = np.asarray(solution.pe)
    start = np.asarray(solution.start_us, dtype=float)
    end = np.asarray(solution.end_us, dtype=float)
    if pe.shape != (n,) or start.shape != (n,) or end.shape != (n,):
        return [f"expected pe, start_us and end_us of {n} tasks, got shapes {pe.shape}, {start.shape}, {end.shape}"]
    violations = []
    for task in range(n):
        p = int(pe[task])
        if not 0 <= p < n_pes:
            violations.append(f"task {task}: PE {p} does not exist (0..{n_pes - 1})")
            continue
        run_us = instance.actual_us[task, p]
        if not np.isfinite(run_us):
            kind = instance.task_type_names[instance.task_type[task]]
            violations.append(f"task {task} ({kind}): PE {p} ({instance.soc.pe_names[p]}) cannot run it")
            continue
        if abs((end[task] - start[task]) - run_us) > TOLERANCE_US * max(1.0, run_us):
            violations.append(f"task {task}: runs {end[task] - start[task]:.6g} us on PE {p}, its run time there is {run_us:.6g} us")
        arrival = instance.arrival_us[instance.task_job[task]]
        if start[task] < arrival - TOLERANCE_US:
            violations.append(f"task {task}: starts at {start[task]:.6g} us, before its job arrives at {arrival:.6g} us")
    if violations:
        return violations
    for (parent, child), data_bytes in zip(instance.edges.tolist(), instance.edge_bytes.tolist()):
        p, q = int(pe[parent]), int(pe[child])
        transfer = 0.0 if p == q else data_bytes / instance.soc.bandwidth_bytes_per_us[p, q]
        if start[child] < end[parent] + transfer - TOLERANCE_US:
            violations.append(
                f"task {child} starts at {start[child]:.6g} us, before parent {parent} ends ({end[parent]:.6g} us) "
                f"plus the transfer ({transfer:.6g} us)"
            )
    for p in range(n_pes):
        tasks = np.flatnonzero(pe == p)
        order = tasks[np.lexsort((end[tasks], start[tasks]))]
        for a, b in zip(order[:-1], order[1:]):
            if start[b] < end[a] - TOLERANCE_US:
                violations.append(f"PE {p}: task {b} starts at {start[b]:.6g} us while task {a} runs until {end[a]:.6g} us")
    return violations
