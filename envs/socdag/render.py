"""Gantt charts of socdag schedules: one row per PE, one bar per task coloured by job (matplotlib)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from schedgym.atomic import atomic_save_png  # noqa: E402
from schedgym.envs.rendering import figure_rgb  # noqa: E402
from schedgym.envs.socdag.instance import SocDagInstance  # noqa: E402
from schedgym.envs.socdag.solution import SocDagSolution  # noqa: E402


def gantt_figure(instance: SocDagInstance, solution: SocDagSolution, title: str | None = None) -> plt.Figure:
    """Tasks not started yet (NaN start) are left out."""
    names = instance.soc.pe_names
    fig, ax = plt.subplots(figsize=(11, max(2.5, 0.32 * len(names) + 1.2)), dpi=100)
    colors = plt.get_cmap("tab20")(instance.task_job % 20)
    started = np.isfinite(solution.start_us)
    for p in range(len(names)):
        tasks = np.flatnonzero(started & (solution.pe == p))
        ax.broken_barh(
            [(solution.start_us[t], solution.end_us[t] - solution.start_us[t]) for t in tasks],
            (p - 0.4, 0.8), facecolors=colors[tasks], edgecolor="black", linewidth=0.3,
        )
    span = float(np.nanmax(solution.end_us)) if started.any() else 1.0
    ax.set_xlim(0, span * 1.01)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time (us)")
    ax.set_title(title or f"{instance.name}: {instance.n_jobs} jobs, last task ends at {span:.1f} us")
    fig.tight_layout()
    return fig


def gantt_rgb(instance: SocDagInstance, solution: SocDagSolution) -> np.ndarray:
    """The Gantt chart as a uint8 RGB array ``[height, width, 3]``."""
    return figure_rgb(gantt_figure(instance, solution))


def save_gantt_png(instance: SocDagInstance, solution: SocDagSolution, path: str | os.PathLike, title: str | None = None) -> None:
    """Write the Gantt chart as a PNG file (atomically)."""
    fig = gantt_figure(instance, solution, title)
    atomic_save_png(fig, path)
    plt.close(fig)
