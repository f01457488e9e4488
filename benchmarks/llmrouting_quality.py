"""llmrouting quality and speed: every router (and the trained one) on the Azure and Mooncake conversation traces
near saturation (0.85, 0.9 and 0.95 of the measured capacity of 4 replicas), p99 TTFT and mean end-to-end latency
side by side, plus simulated requests per second.

    python benchmarks/llmrouting_quality.py [--policy CKPT] [--windows 3]

Window ``k`` of a trace is its ``k``-th block of 2,000 (Azure) or 1,000 (Mooncake) requests; window 0 is the one the
suites use. The first table has every row of window 0; the second, per workload, load and solver, the mean and the
worst over the windows of the ratios to round-robin (mean e2e) and to the best heuristic of the same window (p99
TTFT).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.baselines.llmrouting import ROUTERS, Router
from schedgym.envs.llmrouting import make_instance, metrics, validate
from schedgym.envs.llmrouting.suites import base_workload

LOADS = (0.85, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="", help="also run a trained router from this checkpoint (`schedgym train llmrouting`)")
    parser.add_argument("--windows", type=int, default=3, help="blocks of each trace to run, from its start")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_quality")
    args = parser.parse_args()
    solvers = {name: Router(name) for name in ROUTERS}
    if args.policy:
        from schedgym.agents.solvers import PpoSolver

        solvers["ppo"] = PpoSolver(problem="llmrouting", policy=args.policy)
    rows = []
    for window in range(args.windows):
        for workload in ("azure-conv", "mooncake-conv"):
            for load in LOADS:
                instance = make_instance(base_workload(workload, window), load, 4, f"{workload}-w{window}-{load:g}-4")
                for name, solver in solvers.items():
                    started = time.perf_counter()
                    solution = solver.solve(instance, seed=0)
                    wall_s = time.perf_counter() - started
                    if validate(instance.workload, solution):
                        raise SystemExit(f"{name} produced an invalid routing log on {instance.name}")
                    values = metrics(instance.workload, solution)
                    rows.append({"window": window, "workload": workload, "load": load, "solver": name, "wall_s": wall_s,
                                 "requests_per_s": instance.workload.n_requests / wall_s, **values})
    for row in rows:
        peers = [r for r in rows if (r["window"], r["workload"], r["load"]) == (row["window"], row["workload"], row["load"])]
        row["e2e_vs_rr"] = row["e2e_mean_s"] / next(r for r in peers if r["solver"] == "rr")["e2e_mean_s"]
        row["ttft_p99_vs_best_heuristic"] = row["ttft_p99_s"] / min(r["ttft_p99_s"] for r in peers if r["solver"] in ROUTERS)
    lines = ["| workload | load | solver | p99 TTFT (s) | mean TTFT (s) | mean e2e (s) | p99 e2e (s) | e2e vs rr | p99 TTFT vs best heuristic | sim req/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in (r for r in rows if r["window"] == 0):
        lines.append(
            f"| {row['workload']} | {row['load']:g} | {row['solver']} | {row['ttft_p99_s']:.4f} | {row['ttft_mean_s']:.4f} | "
            f"{row['e2e_mean_s']:.4f} | {row['e2e_p99_s']:.4f} | {row['e2e_vs_rr']:.3f} | {row['ttft_p99_vs_best_heuristic']:.3f} | {row['requests_per_s']:.0f} |"
        )
    lines += ["", f"Over windows 0-{args.windows - 1}, mean (worst):", "",
              "| workload | load | solver | e2e vs rr | p99 TTFT vs best heuristic |", "|---|---|---|---|---|"]
    for row in (r for r in rows if r["window"] == 0):
        same = [r for r in rows if (r["workload"], r["load"], r["solver"]) == (row["workload"], row["load"], row["solver"])]
        e2e, ttft = [r["e2e_vs_rr"] for r in same], [r["ttft_p99_vs_best_heuristic"] for r in same]
        lines.append(f"| {row['workload']} | {row['load']:g} | {row['solver']} | {np.mean(e2e):.3f} ({max(e2e):.3f}) | {np.mean(ttft):.3f} ({max(ttft):.3f}) |")
    print("\n".join(lines))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"machine": platform.platform(), "windows": args.windows, "rows": rows}, indent=1))
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
