"""The leaderboard's pictures, per suite: the ranking as bars, quality against solve time, the best schedule of an
instance (Gantt chart, offset-time picture) and the solvers compared on an instance (latency CDFs).

:func:`suite_pictures` makes them as PNG bytes; :func:`write_plots` writes them to a folder and the HTML report
(:mod:`schedgym.report`) embeds them.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from schedgym.atomic import atomic_write_bytes  # noqa: E402
from schedgym.registry import get_problem  # noqa: E402

SuiteKey = tuple[str, str]  # (problem, suite)


@dataclass
class Picture:
    name: str  # file name stem, unique within the leaderboard
    caption: str
    png: bytes


def figure_png(fig: plt.Figure) -> bytes:
    """``fig`` as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _quality_key(summary: list[dict]) -> tuple[str, str]:
    """Which summary column measures quality in a suite: the gap where there are bounds, else the objective."""
    if any(r["mean_gap_pct"] is not None for r in summary):
        return "mean_gap_pct", "mean gap to best known upper bound (%)"
    return "mean_objective", "mean objective"


def _ranking_bars(title: str, summary: list[dict]) -> bytes:
    key, label = _quality_key(summary)
    ranked = sorted((r for r in summary if r[key] is not None), key=lambda r: r[key])
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(ranked) + 1.2), dpi=100)
    ax.barh([r["solver"] for r in ranked], [r[key] for r in ranked], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel(label)
    ax.set_title(title)
    fig.tight_layout()
    return figure_png(fig)


def _quality_vs_time(title: str, summary: list[dict]) -> bytes:
    """One point per solver: mean wall time per instance (log scale) across, quality up."""
    key, label = _quality_key(summary)
    points = [r for r in summary if r[key] is not None and r["mean_wall_s"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.scatter([max(r["mean_wall_s"], 1e-5) for r in points], [r[key] for r in points], color="tab:orange", zorder=3)
    for r in points:
        ax.annotate(r["solver"], (max(r["mean_wall_s"], 1e-5), r[key]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("mean wall time per instance (s)")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{title}: quality against time")
    fig.tight_layout()
    return figure_png(fig)


def suite_pictures(result: dict[str, list[dict]], max_instances: int = 2) -> dict[SuiteKey, list[Picture]]:
    """Per suite: ranking bars and quality against time; on up to ``max_instances`` instances the picture of the
    best valid solution and the comparison of all solvers, where the problem has them and the rows carry their
    solutions (``result`` from ``run_bench(keep_solutions=True)``, whose ``instances`` the pictures are drawn on)."""
    by_suite: dict[SuiteKey, list[dict]] = defaultdict(list)
    for row in result["summary"]:
        by_suite[(row["problem"], row["suite"])].append(row)
    pictures: dict[SuiteKey, list[Picture]] = {}
    for (problem_name, suite), summary in by_suite.items():
        stem = f"{problem_name}_{suite}".replace("/", "_").replace(os.sep, "_")
        title = f"{problem_name} / {suite}"
        mine = pictures[(problem_name, suite)] = [
            Picture(f"{stem}_ranking", f"{title}: ranking", _ranking_bars(title, summary)),
            Picture(f"{stem}_quality_vs_time", f"{title}: quality against wall time", _quality_vs_time(title, summary)),
        ]
        problem = get_problem(problem_name)
        rows = [r for r in result["rows"] if r["problem"] == problem_name and r["suite"] == suite and "solution" in r and r["valid"]]
        if (problem.picture is None and problem.comparison is None) or not rows:
            continue
        for name in list(dict.fromkeys(r["instance"] for r in rows))[:max_instances]:
            instance = result["instances"][(problem_name, suite, name)]
            on_instance = [r for r in rows if r["instance"] == name]
            solutions = {r["solver"]: problem.solution_from_dict(r["solution"]) for r in on_instance}
            if problem.picture is not None:
                best = min(on_instance, key=lambda r: r["objective"])
                caption = f"{name}: best schedule ({best['solver']}, objective {best['objective']:g})"
                fig = problem.picture(instance, solutions[best["solver"]], caption)
                mine.append(Picture(f"{stem}_{name}_{best['solver']}", caption, figure_png(fig)))
            if problem.comparison is not None:
                fig = problem.comparison(instance, solutions)
                mine.append(Picture(f"{stem}_{name}_comparison", f"{name}: the solvers compared", figure_png(fig)))
    return pictures


def write_plots(result: dict[str, list[dict]], directory: str | os.PathLike, max_instances: int = 2) -> list[Path]:
    """Write :func:`suite_pictures` as PNG files into ``directory``; returns their paths."""
    written = []
    for pictures in suite_pictures(result, max_instances).values():
        for picture in pictures:
            path = Path(directory) / f"{picture.name}.png"
            atomic_write_bytes(path, picture.png)
            written.append(path)
    return written
