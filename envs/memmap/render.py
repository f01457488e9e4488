"""Offset-time pictures of memory maps: one rectangle per fast buffer, live range across, offset range up (matplotlib)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from schedgym.envs.memmap.instance import MemMapInstance  # noqa: E402
from schedgym.envs.memmap.solution import SLOW, MemMapSolution  # noqa: E402
from schedgym.envs.rendering import figure_rgb  # noqa: E402


def offset_time_figure(instance: MemMapInstance, solution: MemMapSolution, title: str | None = None) -> plt.Figure:
    """Fast buffers as rectangles ``[live_start, live_end) x [offset, offset + size)`` (in MiB), coloured by size;
    the fast-memory capacity as a dashed line. Buffers in slow memory are counted in the title."""
    offset = np.asarray(solution.offset)
    fast = np.flatnonzero(offset != SLOW)
    mib = 1 << 20
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    rectangles = [
        Rectangle((instance.live_start[b], offset[b] / mib), instance.live_end[b] - instance.live_start[b], instance.size_bytes[b] / mib)
        for b in fast
    ]
    colors = plt.get_cmap("viridis")(np.log(instance.size_bytes[fast] + 1.0) / np.log(instance.size_bytes.max() + 2.0))
    ax.add_collection(PatchCollection(rectangles, facecolor=colors, edgecolor="black", linewidth=0.2))
    capacity_mib = instance.capacity_bytes / mib
    top = max(capacity_mib, float((offset[fast] + instance.size_bytes[fast]).max()) / mib if len(fast) else 0.0)
    ax.axhline(capacity_mib, color="tab:red", linestyle="--", linewidth=1, label="fast-memory capacity")
    ax.set_xlim(0, int(instance.live_end.max()))
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel("op (time)")
    ax.set_ylabel("offset (MiB)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"{instance.name}: {len(fast)} of {instance.n_buffers} buffers in fast memory")
    fig.tight_layout()
    return fig


def offset_time_rgb(instance: MemMapInstance, solution: MemMapSolution) -> np.ndarray:
    """The offset-time picture as a uint8 RGB array ``[height, width, 3]``."""
    return figure_rgb(offset_time_figure(instance, solution))
