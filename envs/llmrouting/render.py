"""Latency CDFs of several routers on one instance (matplotlib)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from schedgym.atomic import atomic_save_png  # noqa: E402
from schedgym.envs.llmrouting.instance import RoutingInstance  # noqa: E402
from schedgym.envs.llmrouting.solution import RoutingSolution  # noqa: E402


def latency_cdf_figure(instance: RoutingInstance, solutions: dict[str, RoutingSolution]) -> plt.Figure:
    """Two panels, TTFT and end-to-end latency: the empirical CDF of each solver's requests (log time axis)."""
    arrival = instance.workload.arrival_s
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    quantiles = np.arange(1, instance.workload.n_requests + 1) / instance.workload.n_requests
    for name, solution in solutions.items():
        for ax, values in zip(axes, (solution.first_token_s - arrival, solution.finish_s - arrival)):
            ax.plot(np.sort(values), quantiles, label=name, linewidth=1.2)
    for ax, what in zip(axes, ("time to first token (s)", "end-to-end latency (s)")):
        ax.set_xscale("log")
        ax.set_xlabel(what)
        ax.set_ylabel("fraction of requests")
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{instance.name}: latency CDF per router")
    fig.tight_layout()
    return fig


def save_latency_cdf_png(instance: RoutingInstance, solutions: dict[str, RoutingSolution], path: str | os.PathLike) -> None:
    """Write :func:`latency_cdf_figure` as a PNG file (atomically)."""
    fig = latency_cdf_figure(instance, solutions)
    atomic_save_png(fig, path)
    plt.close(fig)
