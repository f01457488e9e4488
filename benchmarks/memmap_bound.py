"""An upper bound on what any memory map can gain, next to what the placers gain, on the traced suites.

    python benchmarks/memmap_bound.py [--suite traced-large] [--time-limit 20]

The bound drops the offsets: each buffer is fast or slow, the fast bytes live in every op stay within the capacity
(a packing needs at least that, and more: no fragmentation is charged), and each op takes max(compute, fast bytes /
fast bandwidth + slow bytes / slow bandwidth), the cost model's roofline. CP-SAT minimises the program's time under
these constraints for ``--time-limit`` s; its proven lower bound is a time no map, learned or not, beats, so the
improvement over all-slow it gives is an upper bound on every solver's.
Beside it: the ``msa`` and ``greedy-size`` placers (checked by the validator). Results go to
``benchmarks/results/memmap_bound_SUITE.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ortools.sat.python import cp_model

from schedgym.atomic import atomic_write_text
from schedgym.baselines.memmap import GreedyPlacer
from schedgym.envs.memmap import MemMapInstance, metrics, validate
from schedgym.envs.memmap.solution import op_times_s
from schedgym.envs.memmap.suites import resolve_suite

RESULTS = Path(__file__).parent / "results"


def improvement_bound_pct(instance: MemMapInstance, time_limit_s: float) -> tuple[float, str, float]:
    """(upper bound on the improvement over all-slow in %, CP-SAT's status, seconds) of the relaxation above.

    Times are whole nanoseconds, rounded so that the relaxed op time never exceeds the modelled one (the all-slow
    time down, each saving up): CP-SAT's proven lower bound on the relaxed program time is then a lower bound on
    every map's modelled time."""
    model = cp_model.CpModel()
    n = instance.n_buffers
    fast = [model.NewBoolVar(f"x{b}") for b in range(n)]
    compute_ns = np.floor(instance.op_compute_s * 1e9).astype(np.int64)
    slow_ns = np.floor(np.bincount(instance.access_op, instance.access_bytes, minlength=instance.n_ops) / instance.slow_bw_bytes_per_s * 1e9).astype(np.int64)
    saved_ns = np.ceil(instance.access_bytes * (1.0 / instance.slow_bw_bytes_per_s - 1.0 / instance.fast_bw_bytes_per_s) * 1e9).astype(np.int64)
    op_ns = [model.NewIntVar(int(compute_ns[op]), int(max(compute_ns[op], slow_ns[op])), f"t{op}") for op in range(instance.n_ops)]
    live_in_op: list[list[int]] = [[] for _ in range(instance.n_ops)]
    for b, (lo, hi) in enumerate(zip(instance.live_start.tolist(), instance.live_end.tolist())):
        for op in range(lo, min(hi, instance.n_ops)):
            live_in_op[op].append(b)
    for buffers in live_in_op:
        if buffers:
            model.Add(sum(int(instance.size_bytes[b]) * fast[b] for b in buffers) <= instance.capacity_bytes)
    saved_by: list[list[tuple[int, int]]] = [[] for _ in range(instance.n_ops)]
    for op, b, saved in zip(instance.access_op.tolist(), instance.access_buffer.tolist(), saved_ns.tolist()):
        saved_by[op].append((b, saved))
    for op in range(instance.n_ops):  # memory time of the op: its all-slow time less what its fast accesses save
        if saved_by[op]:
            model.Add(op_ns[op] >= int(slow_ns[op]) - sum(saved * fast[b] for b, saved in saved_by[op]))
    model.Minimize(sum(op_ns))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 2
    begin = time.perf_counter()
    status = solver.Solve(model)
    seconds = time.perf_counter() - begin
    all_slow_s = float(op_times_s(instance, np.zeros(n, dtype=bool)).sum())
    return 100.0 * (all_slow_s - solver.BestObjectiveBound() / 1e9) / all_slow_s, solver.StatusName(status), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="traced-large")
    parser.add_argument("--time-limit", type=float, default=20.0, help="CP-SAT seconds per program (2 workers)")
    args = parser.parse_args()
    rows = []
    for instance in resolve_suite(args.suite):
        bound, status, seconds = improvement_bound_pct(instance, args.time_limit)
        row = {"instance": instance.name, "buffers": instance.n_buffers, "bound_pct": round(bound, 3), "status": status, "cpsat_s": round(seconds, 2)}
        for name in ("msa", "greedy-size"):
            solution = GreedyPlacer(name).solve(instance)
            if validate(instance, solution):
                raise RuntimeError(f"{name} gave an invalid map on {instance.name}")
            row[name] = round(metrics(instance, solution)["improvement_pct"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {key: float(np.mean([r[key] for r in rows])) for key in ("bound_pct", "msa", "greedy-size")}
    lines = [f"# Upper bound on the improvement over all-slow, `{args.suite}` (fast-memory choice without offsets, CP-SAT {args.time_limit:g} s)", "",
             "| program | buffers | bound % | CP-SAT status | `msa` % | `greedy-size` % | bound / `msa` |", "|---|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ratio = r["bound_pct"] / r["msa"] if r["msa"] > 0 else float("nan")
        lines.append(f"| {r['instance']} | {r['buffers']:,} | {r['bound_pct']:.3f} | {r['status']} | {r['msa']:.3f} | {r['greedy-size']:.3f} | {ratio:.3f} |")
    lines.append(f"| mean | | {mean['bound_pct']:.3f} | | {mean['msa']:.3f} | {mean['greedy-size']:.3f} | {mean['bound_pct'] / mean['msa']:.3f} |")
    RESULTS.mkdir(exist_ok=True)
    stem = f"memmap_bound_{args.suite}"
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps({"suite": args.suite, "time_limit_s": args.time_limit, "rows": rows, "mean": mean}, indent=1))
    atomic_write_text(RESULTS / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
