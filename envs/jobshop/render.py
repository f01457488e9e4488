"""Gantt charts of job-shop schedules (matplotlib)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from schedgym.atomic import atomic_save_png  # noqa: E402
from schedgym.envs.rendering import figure_rgb  # noqa: E402
from schedgym.envs.jobshop.instance import JobShopInstance  # noqa: E402
from schedgym.envs.jobshop.solution import JobShopSolution  # noqa: E402


def gantt_figure(instance: JobShopInstance, solution: JobShopSolution, title: str | None = None) -> plt.Figure:
    """One row per machine, one bar per scheduled operation coloured by job; downtime hatched grey.
    Operations with a negative start time (not scheduled yet) are left out."""
    height = max(2.5, 0.32 * instance.n_machines + 1.2)
    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    colors = plt.get_cmap("tab20")(np.arange(instance.n_jobs) % 20)
    for m in range(instance.n_machines):
        jobs, ops = np.nonzero((instance.machines == m) & (solution.start_times >= 0))
        ax.broken_barh(
            [(solution.start_times[j, o], instance.durations[j, o]) for j, o in zip(jobs, ops)],
            (m - 0.4, 0.8),
            facecolors=colors[jobs],
            edgecolor="black",
            linewidth=0.3,
        )
    for m, start, end in solution.machine_downtime:
        ax.broken_barh([(start, end - start)], (m - 0.4, 0.8), facecolors="lightgrey", hatch="///", edgecolor="grey")
    scheduled = solution.start_times >= 0
    span = int((solution.start_times + instance.durations)[scheduled].max()) if scheduled.any() else 1
    ax.set_xlim(0, span * 1.01)
    ax.set_ylim(-0.6, instance.n_machines - 0.4)
    ax.set_yticks(range(instance.n_machines), [f"M{m}" for m in range(instance.n_machines)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time")
    ax.set_title(title or f"{instance.name}: makespan {span}")
    fig.tight_layout()
    return fig


def gantt_rgb(instance: JobShopInstance, solution: JobShopSolution) -> np.ndarray:
    """The Gantt chart as a uint8 RGB array ``[height, width, 3]``."""
    return figure_rgb(gantt_figure(instance, solution))


def save_gantt_png(instance: JobShopInstance, solution: JobShopSolution, path: str | os.PathLike, title: str | None = None) -> None:
    """Write the Gantt chart of ``solution`` as a PNG file (atomically)."""
    fig = gantt_figure(instance, solution, title)
    atomic_save_png(fig, path)
    plt.close(fig)
