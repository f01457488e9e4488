"""Replay a solution on a device and compare what was measured with what the simulator said."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from schedgym.replay.cpu import replay_on_cpu
from schedgym.replay.device import resolve_device
from schedgym.replay.kernels import calibrate_cpu
from schedgym.replay.plan import ReplayPlan, jobshop_plan, socdag_plan


@dataclass
class FidelityReport:
    """Simulated against measured, all times in microseconds; errors in % of the simulated value.

    ``task_error_pct_*``: per task, |measured run time - simulated run time| / simulated run time (tasks with a
    simulated run time of 0 left out)."""

    problem: str
    instance: str
    device: str
    n_tasks: int
    simulated_makespan_us: float
    measured_makespan_us: float
    makespan_error_pct: float
    simulated_mean_job_us: float
    measured_mean_job_us: float
    mean_job_error_pct: float
    task_error_pct_mean: float
    task_error_pct_p95: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_correlation(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    """Spearman's rank correlation of two equally long sequences (tied values share their mean rank)."""

    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        rank = np.empty(len(values))
        rank[order] = np.arange(len(values), dtype=float)
        for value in np.unique(values):  # ties: the mean of their ranks
            tied = values == value
            rank[tied] = rank[tied].mean()
        return rank

    return float(np.corrcoef(ranks(np.asarray(a, dtype=float)), ranks(np.asarray(b, dtype=float)))[0, 1])


def _mean_job_us(plan: ReplayPlan, end_us: np.ndarray) -> float:
    """Mean over jobs of (last task end - job release)."""
    last_end = np.full(plan.job.max() + 1, -np.inf)
    np.maximum.at(last_end, plan.job, end_us)
    release = np.full(plan.job.max() + 1, np.inf)
    np.minimum.at(release, plan.job, plan.release_us)
    return float(np.mean(last_end - release))


def fidelity_report(plan: ReplayPlan, instance_name: str, device: str, start_us: np.ndarray, end_us: np.ndarray) -> FidelityReport:
    simulated_makespan = float(plan.simulated_end_us.max())
    measured_makespan = float(end_us.max())
    simulated_jobs, measured_jobs = _mean_job_us(plan, plan.simulated_end_us), _mean_job_us(plan, end_us)
    positive = plan.duration_us > 0
    task_error = 100.0 * np.abs((end_us - start_us)[positive] - plan.duration_us[positive]) / plan.duration_us[positive]
    return FidelityReport(
        plan.problem, instance_name, device, plan.n_tasks, simulated_makespan, measured_makespan,
        100.0 * (measured_makespan - simulated_makespan) / simulated_makespan, simulated_jobs, measured_jobs,
        100.0 * (measured_jobs - simulated_jobs) / simulated_jobs, float(task_error.mean()), float(np.percentile(task_error, 95)),
    )


def replay(problem: str, instance: Any, solution: Any, *, device: str = "cpu", profile: Any = None, time_scale: float = 100.0) -> tuple[FidelityReport, dict]:
    """Replay a valid jobshop or socdag ``solution`` on ``device``; returns the fidelity report and the measured
    schedule ``{"resource", "start_us", "end_us"}`` (lists, one entry per task; socdag tasks in instance order,
    jobshop operation ``(j, o)`` at ``j * n_ops + o``).

    Args:
        profile: kernel times of this device: a :class:`KernelProfile` on ``cpu``, a
            :class:`~schedgym.replay.cuda.CudaKernelProfile` on ``cuda`` (default: calibrated now, seconds).
        time_scale: wall microseconds per simulated time unit (jobshop: per unit of the instance; socdag: per
            simulated microsecond). The report's times are wall times, simulated ones stretched by it.

    Raises:
        ValueError: an unknown problem or device, or a solution the validator rejects (the violations are named).
        RuntimeError: ``cuda`` asked for where there is no CUDA device.
    """
    from schedgym.registry import get_problem

    resolve_device(device)
    if problem not in ("jobshop", "socdag"):
        raise ValueError(f"replay covers jobshop and socdag solutions, not {problem!r}")
    violations = get_problem(problem).validate(instance, solution)
    if violations:
        raise ValueError(f"the solution is not valid for {instance.name}, so it cannot be replayed: {violations[0]}")
    plan = jobshop_plan(instance, solution, time_scale) if problem == "jobshop" else socdag_plan(instance, solution, time_scale)
    if device == "cuda":
        from schedgym.replay import cuda

        layout = cuda.JOBSHOP_LAYOUT if problem == "jobshop" else cuda.SOCDAG_LAYOUT
        start_us, end_us = cuda.replay_on_cuda(plan, profile or cuda.calibrate_cuda(list(layout.values())), layout)
    else:
        start_us, end_us = replay_on_cpu(plan, profile or calibrate_cpu())
    measured = {"resource": plan.resource.tolist(), "start_us": start_us.tolist(), "end_us": end_us.tolist()}
    return fidelity_report(plan, instance.name, device, start_us, end_us), measured
