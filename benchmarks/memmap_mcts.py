"""``ppo-mcts`` (planning at decision time) side by side with the placer, its other search and CP-SAT.

    python benchmarks/memmap_mcts.py [--small-time 1] [--large-time 10] [--ppo-max-buffers 4000]

In one run, every map checked by the memmap validator (mean improvement over all-slow, %):

* ``traced-models`` (12 traces of 19-68 buffers): ``ppo`` (greedy), and at ``--small-time`` s each ``ppo-sample``,
  ``ppo-mcts``, ``ppo-mcts`` with a uniform prior (the network's prior at temperature 10^6: what the prior adds) and
  ``cpsat``; ``cpsat`` at 10 s (optimal on these traces) as the reference.
* ``traced-large`` (8 programs of 1,028-9,792 buffers): the three greedy placers, ``ppo`` (greedy; only up to
  ``--ppo-max-buffers`` buffers: one forward pass over the whole program per decision, 4 ms at 1,000 buffers and
  180 ms at 10,000), and at ``--large-time`` s ``cpsat`` (with its CP-SAT status: ``UNKNOWN`` means it found no map
  and returned its greedy-size hint) and ``ppo-mcts``; wall times include building the CP-SAT model.

Results: ``benchmarks/results/memmap_mcts.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from schedgym.atomic import atomic_write_text
from schedgym.agents.mcts import MctsSolver
from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer
from schedgym.envs.memmap import metrics, validate
from schedgym.envs.memmap.suites import resolve_suite
from schedgym.registry import make_solver

RESULTS = Path(__file__).parent / "results"
UNIFORM_TEMPERATURE = 1e6


def run(solver, instance, time_limit: float | None) -> dict:
    begin = time.perf_counter()
    solution = solver.solve(instance, time_limit=time_limit)
    wall_s = time.perf_counter() - begin
    problems = validate(instance, solution)
    if problems:
        raise AssertionError(f"{getattr(solver, 'name', solver)} gave an invalid map on {instance.name}: {problems[:3]}")
    return {"improvement_pct": round(metrics(instance, solution)["improvement_pct"], 4), "wall_s": round(wall_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-time", type=float, default=1.0, help="seconds per traced-models trace for the searches")
    parser.add_argument("--large-time", type=float, default=10.0, help="seconds per traced-large program for cpsat and ppo-mcts")
    parser.add_argument("--ppo-max-buffers", type=int, default=4000, help="run greedy ppo on traced-large programs up to this size")
    args = parser.parse_args()
    mcts, uniform = MctsSolver(), MctsSolver(prior_temperature=UNIFORM_TEMPERATURE)
    ppo, sample, cpsat = make_solver("memmap", "ppo"), make_solver("memmap", "ppo-sample"), CpSatMemMap(num_workers=2)
    small = resolve_suite("traced-models")
    mcts.solve(small[0], time_limit=0.2)  # compile the kernels and warm the network up outside the timings
    rows = []
    for instance in small:
        row = {"suite": "traced-models", "instance": instance.name, "buffers": instance.n_buffers}
        row["ppo"] = run(ppo, instance, None)
        for name, solver in (("ppo-sample", sample), ("ppo-mcts", mcts), ("ppo-mcts-uniform", uniform), ("cpsat", cpsat)):
            row[name] = run(solver, instance, args.small_time)
        row["cpsat-10s"] = run(cpsat, instance, 10.0)
        rows.append(row)
        print(json.dumps(row), flush=True)
    for instance in resolve_suite("traced-large"):
        row = {"suite": "traced-large", "instance": instance.name, "buffers": instance.n_buffers}
        for name in ("greedy-size", "msa", "first-fit"):
            row[name] = run(GreedyPlacer(name), instance, None)
        if instance.n_buffers <= args.ppo_max_buffers:
            row["ppo"] = run(ppo, instance, None)
        row["cpsat"] = run(cpsat, instance, args.large_time) | {"status": cpsat.last_status}
        row["ppo-mcts"] = run(mcts, instance, args.large_time)
        rows.append(row)
        print(json.dumps(row), flush=True)
    atomic_write_text(RESULTS / "memmap_mcts.json", json.dumps(rows, indent=1))
    atomic_write_text(RESULTS / "memmap_mcts.md", markdown(rows, args))


def markdown(rows: list[dict], args) -> str:
    def cell(row: dict, name: str) -> str:
        return f"{row[name]['improvement_pct']:.3f}" if name in row else "-"

    def mean(suite_rows: list[dict], name: str) -> str:
        values = [row[name]["improvement_pct"] for row in suite_rows if name in row]
        return f"{sum(values) / len(values):.3f}" if len(values) == len(suite_rows) else "-"

    small = [row for row in rows if row["suite"] == "traced-models"]
    large = [row for row in rows if row["suite"] == "traced-large"]
    small_names = ("ppo", "ppo-sample", "ppo-mcts", "ppo-mcts-uniform", "cpsat", "cpsat-10s")
    reached = sum(row["ppo-mcts"]["improvement_pct"] >= row["cpsat-10s"]["improvement_pct"] - 1e-3 for row in small)
    lines = [
        f"# ppo-mcts on memmap ({platform.processor() or platform.machine()}, 2 cores)", "",
        f"Mean improvement over all-slow, %. `traced-models`: searches and `cpsat` at {args.small_time:g} s per trace, "
        f"`cpsat-10s` the optimum; `ppo-mcts` reaches it on {reached}/{len(small)}.", "",
        "| trace | buffers | " + " | ".join(small_names) + " |", "|---|---:|" + "---:|" * len(small_names),
    ]
    lines += [f"| {row['instance']} | {row['buffers']} | " + " | ".join(cell(row, n) for n in small_names) + " |" for row in small]
    lines.append("| **mean** | | " + " | ".join(mean(small, n) for n in small_names) + " |")
    large_names = ("greedy-size", "msa", "first-fit", "ppo", "cpsat", "ppo-mcts")
    lines += [
        "", f"`traced-large`: `cpsat` and `ppo-mcts` at {args.large_time:g} s per program (wall s in brackets; the CP-SAT status"
        " `UNKNOWN`: no map found, its greedy-size hint returned); `ppo` greedy up to "
        f"{args.ppo_max_buffers:,} buffers.", "",
        "| program | buffers | " + " | ".join(large_names) + " | cpsat status |", "|---|---:|" + "---:|" * len(large_names) + "---|",
    ]
    for row in large:
        cells = [cell(row, n) + (f" ({row[n]['wall_s']:.1f} s)" if n in ("cpsat", "ppo-mcts", "ppo") and n in row else "") for n in large_names]
        lines.append(f"| {row['instance']} | {row['buffers']:,} | " + " | ".join(cells) + f" | {row['cpsat']['status']} |")
    lines.append("| **mean** | | " + " | ".join(mean(large, n) for n in large_names) + " | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
