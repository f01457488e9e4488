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
    starts = solution.start_times
    return _gantt(instance, starts, starts + instance.durations, None, solution.machine_downtime, title)


def blocking_gantt_figure(instance, solution, title: str | None = None) -> plt.Figure:
    """The Gantt chart of a blocking schedule (``instance``: a BlockingJobShopInstance or its job shop): each
    operation's bar runs from its start to its completion (shutdowns it met included), then a pale bar while its job
    stays blocked on the machine; shutdowns hatched grey."""
    from schedgym.envs.jobshop.blocking_solution import completion_times, shop_of

    shop = shop_of(instance)
    starts = solution.start_times
    ends = completion_times(shop, solution)
    held_until = np.concatenate([starts[:, 1:], ends[:, -1:]], axis=1)
    return _gantt(shop, starts, ends, held_until, solution.shutdowns, title or f"{instance.name}: makespan {int(ends.max())}")


def _gantt(instance: JobShopInstance, starts: np.ndarray, ends: np.ndarray, held_until: np.ndarray | None, downtime, title: str | None) -> plt.Figure:
    """The chart of operations on ``[starts, ends)`` (int ``[J, O]``, negative start: left out), blocked on
    ``[ends, held_until)`` if given, and ``(machine, start, end)`` downtime."""
    height = max(2.5, 0.32 * instance.n_machines + 1.2)
    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    colors = plt.get_cmap("tab20")(np.arange(instance.n_jobs) % 20)
    for m in range(instance.n_machines):
        jobs, ops = np.nonzero((instance.machines == m) & (starts >= 0))
        if held_until is not None:
            ax.broken_barh([(ends[j, o], held_until[j, o] - ends[j, o]) for j, o in zip(jobs, ops)], (m - 0.4, 0.8), facecolors=colors[jobs], alpha=0.3)
        ax.broken_barh(
            [(starts[j, o], ends[j, o] - starts[j, o]) for j, o in zip(jobs, ops)],
            (m - 0.4, 0.8),
            facecolors=colors[jobs],
            edgecolor="black",
            linewidth=0.3,
        )
    for m, start, end in downtime:
        ax.broken_barh([(start, end - start)], (m - 0.4, 0.8), facecolors="lightgrey", hatch="///", edgecolor="grey")
    scheduled = starts >= 0
    span = int(ends[scheduled].max()) if scheduled.any() else 1
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
