"""The Ray backend against the one-process backend, side by side in one run: every Taillard and DMU instance with
the dispatching rules and the shipped policy (``ppo``, greedy), first in this process, then on a local Ray of
``--cpus`` CPUs. Prints and writes the wall times, their ratio and whether the rows are identical (all fields but
``wall_s``).

    python benchmarks/ray_speedup.py --cpus 2 --out benchmarks/results/ray_speedup.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import ray

from schedgym.atomic import atomic_write_text
from schedgym.backends import init_ray
from schedgym.bench import BenchRun, run_bench, without_wall_time

SOLVERS = ["spt", "lpt", "fifo", "mor", "mwkr", "fdd-mwkr", "ppo"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--suites", default="taillard,dmu")
    parser.add_argument("--out", default="benchmarks/results/ray_speedup.json")
    args = parser.parse_args()
    runs = [BenchRun("jobshop", suite, SOLVERS) for suite in args.suites.split(",")]

    started = time.perf_counter()
    local = run_bench(runs, progress=False)["rows"]
    local_s = time.perf_counter() - started

    started = time.perf_counter()
    init_ray(num_cpus=args.cpus)
    ray_init_s = time.perf_counter() - started
    distributed = run_bench(runs, progress=False, backend="ray")["rows"]
    ray_s = time.perf_counter() - started
    ray.shutdown()

    differing = [a["instance"] + "/" + a["solver"] for a, b in zip(without_wall_time(local), without_wall_time(distributed)) if a != b]
    figures = {
        "suites": args.suites, "solvers": SOLVERS, "rows": len(local), "ray_cpus": args.cpus,
        "local_s": round(local_s, 1), "ray_s_including_start": round(ray_s, 1), "ray_start_s": round(ray_init_s, 1),
        "speedup": round(local_s / ray_s, 3), "identical_rows": len(local) == len(distributed) and not differing,
        "differing_rows": differing, "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
    }
    print(json.dumps(figures, indent=1))
    atomic_write_text(args.out, json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
