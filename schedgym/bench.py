"""The leaderboard: run solvers over suites, check every schedule with the problem's validator, summarize.

A run is planned as (instance, solver) jobs; a backend (:mod:`schedgym.backends`: this process, or a Ray cluster)
runs them and hands back one row each; every row goes to the append-only rows file as soon as it exists, so an
interrupted run resumes from there (``resume=True``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from schedgym.atomic import atomic_write_text
from schedgym.registry import Solver, get_problem, make_solver
from schedgym.rows_file import RowsFile, row_key


@dataclass
class BenchRun:
    """One ``(problem, suite, solvers, time limit)`` block of a leaderboard."""

    problem: str
    suite: str
    solvers: list[str]
    time_limit: float | None = None
    instances: list[str] | None = None  # restrict the suite to these instance names
    suite_options: dict[str, Any] | None = None  # passed to the problem's load_suite (llmrouting: load, n_replicas)


@dataclass
class BenchJob:
    """One (instance, solver) pair: what a worker needs to make its row (the solver itself travels apart, once
    per worker, keyed by :attr:`solver_key`)."""

    index: int  # position of the row in the leaderboard
    problem: str
    suite: str
    instance: Any
    solver_name: str
    time_limit: float | None
    seed: int
    keep_solution: bool

    @property
    def solver_key(self) -> tuple[str, str]:
        return (self.problem, self.solver_name)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.problem, self.suite, self.instance.name, self.solver_name)


def _gap_pct(objective: float | None, upper_bound: float | None) -> float | None:
    if objective is None or upper_bound is None or not upper_bound:
        return None
    return 100.0 * (objective - upper_bound) / upper_bound


def plan_jobs(runs: list[BenchRun], *, seed: int = 0, solver_options: dict[str, Any] | None = None, keep_solutions: bool = False) -> tuple[list[BenchJob], dict[tuple[str, str], Solver]]:
    """The jobs of ``runs`` in leaderboard order, and the solvers they need keyed by ``(problem, solver name)``.

    Raises:
        KeyError: an unknown problem, suite, instance or solver.
        ValueError: suite options that do not apply to the problem.
    """
    jobs: list[BenchJob] = []
    solvers: dict[tuple[str, str], Solver] = {}
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
        for name in run.solvers:
            if (run.problem, name) not in solvers:
                solvers[(run.problem, name)] = make_solver(run.problem, name, **(solver_options or {}))
        for inst in instances:
            for name in run.solvers:
                jobs.append(BenchJob(len(jobs), run.problem, run.suite, inst, name, run.time_limit, seed, keep_solutions))
    return jobs, solvers


def _row(job: BenchJob, objective: float | None, wall_s: float, valid: bool, metrics: dict) -> dict:
    problem = get_problem(job.problem)
    lower, upper = problem.bounds(job.instance)
    return {
        "problem": job.problem,
        "suite": job.suite,
        "instance": job.instance.name,
        "group": problem.group(job.instance),
        "solver": job.solver_name,
        "objective": objective,
        "lower_bound": lower,
        "upper_bound": upper,
        "gap_pct": _gap_pct(objective, upper),
        "wall_s": wall_s,
        "valid": valid,
        "metrics": metrics,
    }


def failed_row(job: BenchJob, error: str, wall_s: float = 0.0) -> dict:
    """The row of a job that made no solution: no objective, not valid, ``error`` says why."""
    return {**_row(job, None, wall_s, False, {}), "error": error}


def run_job(job: BenchJob, solver: Solver) -> dict:
    """Solve, validate and evaluate one job; a solver that raises gives a :func:`failed_row` naming the exception.

    The row's solution (as its JSON dict) is under ``"solution"`` when ``job.keep_solution``.
    """
    started = time.perf_counter()
    try:
        solution = solver.solve(job.instance, time_limit=job.time_limit, seed=job.seed)
    except Exception as exc:  # reported in the row, not raised: one broken solver must not stop a leaderboard
        return failed_row(job, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    wall_s = time.perf_counter() - started
    problem = get_problem(job.problem)
    violations = problem.validate(job.instance, solution)
    objective, metrics = problem.evaluate(job.instance, solution)
    if violations:
        metrics["violations"] = violations[:20]
    row = _row(job, objective, wall_s, not violations, metrics)
    if job.keep_solution:
        row["solution"] = solution.to_dict()
    return row


def run_bench(
    runs: list[BenchRun],
    *,
    seed: int = 0,
    solver_options: dict[str, Any] | None = None,
    progress: bool = True,
    keep_solutions: bool = False,
    rows_path: str | os.PathLike | None = None,
    resume: bool = False,
    backend: str = "local",
    backend_options: dict[str, Any] | None = None,
) -> dict[str, list[dict]]:
    """Solve every (instance, solver) pair of ``runs``; returns ``{"rows": [...], "summary": [...], "instances":
    {(problem, suite, instance name): instance}}`` (the instances as loaded, for pictures).

    A row: ``{problem, suite, instance, group, solver, objective, lower_bound, upper_bound, gap_pct, wall_s, valid,
    metrics}``; ``gap_pct`` = 100 * (objective - upper_bound) / upper_bound, None without a bound. Every row's
    solution is checked by the problem's validator; violations go to ``metrics["violations"]``. A job that made no
    solution (the solver raised, its worker died on every try, or it ran past its time limit and was killed) has
    an ``error`` and ``valid`` false. With ``keep_solutions`` each row also carries its ``solution`` (JSON dict).

    Args:
        rows_path: the append-only rows file (one JSON row per line, written as each row is made).
        resume: keep the rows already in ``rows_path`` and run only the jobs they do not cover.
        backend: ``local`` (this process, one job at a time) or ``ray`` (:class:`schedgym.backends.OnRay`).
        backend_options: for the backend; ray: ``address`` of the cluster to join, ``max_attempts``,
            ``kill_grace_s``.
    """
    from schedgym.backends import BACKENDS

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if resume and rows_path is None:
        raise ValueError("--resume needs the rows file of the interrupted run (--rows, or the bare leaderboard's)")
    runner = BACKENDS[backend](**(backend_options or {}))  # first: Ray's workers start while the suites load
    try:
        jobs, solvers = plan_jobs(runs, seed=seed, solver_options=solver_options, keep_solutions=keep_solutions)
        rows_file = RowsFile(rows_path) if rows_path is not None else None
        index_of = {job.key: job.index for job in jobs}
        rows: dict[int, dict] = {}
        if rows_file is not None and resume:
            for row in rows_file.read():
                if row_key(row) in index_of and (not keep_solutions or "solution" in row or "error" in row):
                    rows[index_of[row_key(row)]] = row
        elif rows_file is not None:
            rows_file.start_fresh()
        todo = [job for job in jobs if job.index not in rows]
        bar = tqdm(total=len(todo), desc="bench", unit="run", disable=not progress)

        def on_row(row: dict) -> None:
            if rows_file is not None:
                rows_file.append(row)
            rows[index_of[row_key(row)]] = row
            bar.update(1)

        runner.run(todo, solvers, on_row)
        bar.close()
    finally:
        runner.close()
    ordered = [rows[i] for i in sorted(rows)]
    return {"rows": ordered, "summary": summarize(ordered), "instances": {(job.problem, job.suite, job.instance.name): job.instance for job in jobs}}


def without_wall_time(rows: list[dict]) -> list[dict]:
    """``rows`` without ``wall_s``, the one field in which two runs of the same leaderboard may differ."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


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


@dataclass
class Table:
    """A table of formatted cells; ``numeric[i]`` says whether column ``i`` is right-aligned."""

    caption: str
    header: list[str]
    numeric: list[bool]
    cells: list[list[str]]


def suite_tables(result: dict[str, list[dict]]) -> dict[tuple[str, str], list[Table]]:
    """Per ``(problem, suite)``: the ranking (mean gap, objective, the problem's summary metrics, wall time, valid %,
    failed jobs) and, where the suite has several groups, the mean gap (or mean objective where the suite has no
    bounds) per group."""
    tables: dict[tuple[str, str], list[Table]] = {}
    by_suite: dict[tuple, list[dict]] = defaultdict(list)
    for row in result["summary"]:
        by_suite[(row["problem"], row["suite"])].append(row)
    for (problem, suite), summary in by_suite.items():
        summary = sorted(summary, key=lambda r: (r["mean_gap_pct"] is None, r["mean_gap_pct"] or 0.0, r["mean_objective"] or 0.0))
        rows = [r for r in result["rows"] if r["problem"] == problem and r["suite"] == suite]
        extra = list(get_problem(problem).summary_metrics)
        ranking = Table(
            "ranking",
            ["rank", "solver", "n", "mean gap %", "mean objective", *(f"mean {m}" for m in extra), "mean wall s", "valid %", "failed"],
            [True, False, True, True, True, *(True for _ in extra), True, True, True],
            [],
        )
        for rank, r in enumerate(summary, 1):
            mine = [x for x in rows if x["solver"] == r["solver"]]
            ranking.cells.append([
                str(rank), r["solver"], str(r["n"]), _fmt(r["mean_gap_pct"], 2), _fmt(r["mean_objective"], 1),
                *(_fmt(_mean([x["metrics"].get(m) for x in mine]), 2) for m in extra),
                _fmt(r["mean_wall_s"], 3), f"{r['valid_pct']:.0f}", str(sum("error" in x for x in mine)),
            ])
        tables[(problem, suite)] = [ranking]
        groups = list(dict.fromkeys(r["group"] for r in rows))
        if len(groups) > 1:
            key = "gap_pct" if any(x["gap_pct"] is not None for x in rows) else "objective"
            pivot = Table(f"mean {'gap %' if key == 'gap_pct' else 'objective'} per group", ["solver", *groups], [False, *(True for _ in groups)], [])
            for r in summary:
                values = [_mean([x[key] for x in rows if x["solver"] == r["solver"] and x["group"] == g]) for g in groups]
                pivot.cells.append([r["solver"], *(_fmt(v, 1) for v in values)])
            tables[(problem, suite)].append(pivot)
    return tables


def to_markdown(result: dict[str, list[dict]]) -> str:
    """:func:`suite_tables` as Markdown, one section per suite."""
    out = []
    for (problem, suite), tables in suite_tables(result).items():
        out.append(f"### {problem} / {suite}\n")
        for table in tables:
            if table.caption != "ranking":
                out.append(f"{table.caption[0].upper()}{table.caption[1:]}:\n")
            out.append("| " + " | ".join(table.header) + " |")
            out.append("|" + "".join("---:|" if numeric else "---|" for numeric in table.numeric))
            out += ["| " + " | ".join(cells) + " |" for cells in table.cells]
            out.append("")
    return "\n".join(out)


def write_json(result: dict[str, list[dict]], path: str | os.PathLike) -> None:
    """Rows (without their solutions) and summary as JSON, atomically."""
    clean = {"rows": [{k: v for k, v in row.items() if k != "solution"} for row in result["rows"]], "summary": result["summary"]}
    atomic_write_text(path, json.dumps(clean, indent=1))
