"""The leaderboard: run solvers over suites, check every schedule with the problem's validator, summarize."""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from schedgym.atomic import atomic_save_png, atomic_write_text
from schedgym.registry import get_problem, make_solver


@dataclass
class BenchRun:
    """One ``(problem, suite, solvers, time limit)`` block of a leaderboard."""

    problem: str
    suite: str
    solvers: list[str]
    time_limit: float | None = None
    instances: list[str] | None = None  # restrict the suite to these instance names
    suite_options: dict[str, Any] | None = None  # passed to the problem's load_suite (llmrouting: load, n_replicas)


def _gap_pct(objective: float, upper_bound: float | None) -> float | None:
    if upper_bound is None or not upper_bound:
        return None
    return 100.0 * (objective - upper_bound) / upper_bound


def run_bench(
    runs: list[BenchRun],
    *,
    seed: int = 0,
    solver_options: dict[str, Any] | None = None,
    progress: bool = True,
    keep_solutions: bool = False,
) -> dict[str, list[dict]]:
    """Solve every (instance, solver) pair of ``runs``; returns ``{"rows": [...], "summary": [...]}``.

    A row: ``{problem, suite, instance, group, solver, objective, lower_bound, upper_bound, gap_pct, wall_s, valid,
    metrics}``; ``gap_pct`` = 100 * (objective - upper_bound) / upper_bound, None without a bound. Every row's
    solution is checked by the problem's validator; violations go to ``metrics["violations"]``.
    With ``keep_solutions`` each row also carries its ``solution`` object (not serialised).
    """
    jobs = []
    for run in runs:
        problem = get_problem(run.problem)
        if run.suite_options:
            try:
                instances = problem.load_suite(run.suite, **run.suite_options)
            except TypeError:
                raise ValueError(f"suite options {sorted(run.suite_options)} do not apply to {run.problem}; drop them (--load / --replicas are for llmrouting)") from None
        else:
            instances = problem.load_suite(run.suite)
        if run.instances:
            wanted = set(run.instances)
            missing = wanted - {inst.name for inst in instances}
            if missing:
                raise KeyError(f"instances {sorted(missing)} are not in suite {run.suite!r}")
            instances = [inst for inst in instances if inst.name in wanted]
        solvers = {name: make_solver(run.problem, name, **(solver_options or {})) for name in run.solvers}
        jobs += [(run, problem, inst, name, solvers[name]) for inst in instances for name in run.solvers]

    rows = []
    for run, problem, instance, solver_name, solver in tqdm(jobs, desc="bench", unit="run", disable=not progress):
        started = time.perf_counter()
        solution = solver.solve(instance, time_limit=run.time_limit, seed=seed)
        wall_s = time.perf_counter() - started
        violations = problem.validate(instance, solution)
        objective, metrics = problem.evaluate(instance, solution)
        lower, upper = problem.bounds(instance)
        if violations:
            metrics["violations"] = violations[:20]
        row = {
            "problem": run.problem,
            "suite": run.suite,
            "instance": instance.name,
            "group": problem.group(instance),
            "solver": solver_name,
            "objective": objective,
            "lower_bound": lower,
            "upper_bound": upper,
            "gap_pct": _gap_pct(objective, upper),
            "wall_s": wall_s,
            "valid": not violations,
            "metrics": metrics,
        }
        if keep_solutions:
            row["solution"] = solution
        rows.append(row)
    return {"rows": rows, "summary": summarize(rows)}


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else None


def summarize(rows: list[dict]) -> list[dict]:
    """One summary row per (problem, suite, solver), in first-seen order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["problem"], row["suite"], row["solver"])].append(row)
    return [
        {
            "problem": problem,
            "suite": suite,
            "solver": solver,
            "n": len(group),
            "mean_gap_pct": _mean([r["gap_pct"] for r in group]),
            "mean_objective": _mean([r["objective"] for r in group]),
            "mean_wall_s": _mean([r["wall_s"] for r in group]),
            "valid_pct": 100.0 * sum(r["valid"] for r in group) / len(group),
        }
        for (problem, suite, solver), group in groups.items()
    ]


def _fmt(value: float | None, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals, or 3 significant digits below 10 (latencies in seconds)."""
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.{digits}f}"


def to_markdown(result: dict[str, list[dict]]) -> str:
    """Per suite: a ranking table (mean gap, objective, the problem's summary metrics, wall time, valid %) and a
    pivot per group of the mean gap (or of the mean objective where the suite has no bounds)."""
    out = []
    by_suite: dict[tuple, list[dict]] = defaultdict(list)
    for row in result["summary"]:
        by_suite[(row["problem"], row["suite"])].append(row)
    for (problem, suite), summary in by_suite.items():
        summary = sorted(summary, key=lambda r: (r["mean_gap_pct"] is None, r["mean_gap_pct"] or 0.0, r["mean_objective"] or 0.0))
        rows = [r for r in result["rows"] if r["problem"] == problem and r["suite"] == suite]
        extra = list(get_problem(problem).summary_metrics)
        out.append(f"### {problem} / {suite}\n")
        out.append("| rank | solver | n | mean gap % | mean objective | " + "".join(f"mean {m} | " for m in extra) + "mean wall s | valid % |")
        out.append("|---:|---|---:|---:|---:|" + "---:|" * len(extra) + "---:|---:|")
        for rank, r in enumerate(summary, 1):
            mine = [x for x in rows if x["solver"] == r["solver"]]
            metric_cells = "".join(f"{_fmt(_mean([x['metrics'].get(m) for x in mine]), 2)} | " for m in extra)
            out.append(
                f"| {rank} | {r['solver']} | {r['n']} | {_fmt(r['mean_gap_pct'], 2)} | {_fmt(r['mean_objective'], 1)} | "
                f"{metric_cells}{_fmt(r['mean_wall_s'], 3)} | {r['valid_pct']:.0f} |"
            )
        groups = list(dict.fromkeys(r["group"] for r in rows))
        if len(groups) > 1:
            key = "gap_pct" if any(x["gap_pct"] is not None for x in rows) else "objective"
            out.append("")
            out.append(f"Mean {'gap %' if key == 'gap_pct' else 'objective'} per group:\n")
            out.append("| solver | " + " | ".join(groups) + " |")
            out.append("|---|" + "---:|" * len(groups))
            for r in summary:
                cells = [_mean([x[key] for x in rows if x["solver"] == r["solver"] and x["group"] == g]) for g in groups]
                out.append(f"| {r['solver']} | " + " | ".join(_fmt(c, 1) for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def write_json(result: dict[str, list[dict]], path: str | os.PathLike) -> None:
    clean = {"rows": [{k: v for k, v in row.items() if k != "solution"} for row in result["rows"]], "summary": result["summary"]}
    atomic_write_text(path, json.dumps(clean, indent=1))


def write_plots(result: dict[str, list[dict]], directory: str | os.PathLike, max_pictures: int = 4) -> list[Path]:
    """Per suite: a bar chart of mean gap per solver, the picture (Gantt...) of the best solution and the solvers'
    comparison (latency CDFs...) on up to ``max_pictures`` instances. Needs rows made with ``keep_solutions=True``
    for the pictures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    written = []
    by_suite: dict[tuple, list[dict]] = defaultdict(list)
    for row in result["summary"]:
        by_suite[(row["problem"], row["suite"])].append(row)
    for (problem_name, suite), summary in by_suite.items():
        stem = f"{problem_name}_{suite}".replace("/", "_").replace(os.sep, "_")
        gaps = [(r["solver"], r["mean_gap_pct"]) for r in summary if r["mean_gap_pct"] is not None]
        if gaps:
            gaps.sort(key=lambda x: x[1])
            fig, ax = plt.subplots(figsize=(7, 0.4 * len(gaps) + 1.2), dpi=100)
            ax.barh([g[0] for g in gaps], [g[1] for g in gaps], color="tab:blue")
            ax.invert_yaxis()
            ax.set_xlabel("mean gap to best known upper bound (%)")
            ax.set_title(f"{problem_name} / {suite}")
            fig.tight_layout()
            path = directory / f"{stem}_gap.png"
            atomic_save_png(fig, path)
            plt.close(fig)
            written.append(path)
        problem = get_problem(problem_name)
        rows = [r for r in result["rows"] if r["problem"] == problem_name and r["suite"] == suite and "solution" in r and r["valid"]]
        if (problem.save_picture is None and problem.save_comparison is None) or not rows:
            continue
        instances = {inst.name: inst for inst in problem.load_suite(suite)}
        for name in list(dict.fromkeys(r["instance"] for r in rows))[:max_pictures]:
            on_instance = [r for r in rows if r["instance"] == name]
            if problem.save_picture is not None:
                best = min(on_instance, key=lambda r: r["objective"])
                path = directory / f"{stem}_{name}_{best['solver']}.png"
                problem.save_picture(instances[name], best["solution"], path, f"{name}: {best['solver']}, objective {best['objective']:g}")
                written.append(path)
            if problem.save_comparison is not None:
                path = directory / f"{stem}_{name}_comparison.png"
                problem.save_comparison(instances[name], {r["solver"]: r["solution"] for r in on_instance}, path)
                written.append(path)
    return written
