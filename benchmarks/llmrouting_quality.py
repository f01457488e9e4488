"""llmrouting quality and speed: every router (and the trained one) on the Azure and Mooncake conversation traces
near saturation (0.85, 0.9 and 0.95 of the measured capacity of 4 replicas), p99 TTFT and mean end-to-end latency
side by side, plus simulated requests per second.

    python benchmarks/llmrouting_quality.py [--policy CKPT]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from schedgym.baselines.llmrouting import ROUTERS, Router
from schedgym.envs.llmrouting import make_instance, metrics, validate
from schedgym.envs.llmrouting.suites import base_workload

LOADS = (0.85, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="", help="also run a trained router from this checkpoint (`schedgym train llmrouting`)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_quality")
    args = parser.parse_args()
    solvers = {name: Router(name) for name in ROUTERS}
    if args.policy:
        from schedgym.agents.solvers import PpoSolver

        solvers["ppo"] = PpoSolver(problem="llmrouting", policy=args.policy)
    rows = []
    for workload in ("azure-conv", "mooncake-conv"):
        for load in LOADS:
            instance = make_instance(base_workload(workload), load, 4, f"{workload}-{load:g}-4")
            for name, solver in solvers.items():
                started = time.perf_counter()
                solution = solver.solve(instance, seed=0)
                wall_s = time.perf_counter() - started
                if validate(instance.workload, solution):
                    raise SystemExit(f"{name} produced an invalid routing log on {instance.name}")
                values = metrics(instance.workload, solution)
                rows.append({"workload": workload, "load": load, "solver": name, "wall_s": wall_s,
                             "requests_per_s": instance.workload.n_requests / wall_s, **values})
    lines = ["| workload | load | solver | p99 TTFT (s) | mean TTFT (s) | mean e2e (s) | p99 e2e (s) | e2e vs rr | p99 TTFT vs best heuristic | sim req/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peers = [r for r in rows if r["workload"] == row["workload"] and r["load"] == row["load"]]
        rr = next(r for r in peers if r["solver"] == "rr")
        best_ttft = min(r["ttft_p99_s"] for r in peers if r["solver"] in ROUTERS)
        lines.append(
            f"| {row['workload']} | {row['load']:g} | {row['solver']} | {row['ttft_p99_s']:.4f} | {row['ttft_mean_s']:.4f} | "
            f"{row['e2e_mean_s']:.4f} | {row['e2e_p99_s']:.4f} | {row['e2e_mean_s'] / rr['e2e_mean_s']:.3f} | "
            f"{row['ttft_p99_s'] / best_ttft:.3f} | {row['requests_per_s']:.0f} |"
        )
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
