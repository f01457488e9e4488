"""Simulated against measured on the CPU replay backend: schedules of several solvers replayed with numpy kernels
(one thread per machine or PE), makespan error per schedule and whether the solvers rank the same measured as
simulated. On a machine with fewer cores than resources the threads share cores and measured times stretch: this
measures the CPU backend, not the simulators (that needs the GPU backend).

    OPENBLAS_NUM_THREADS=1 python benchmarks/replay_cpu.py --out benchmarks/results/replay_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os

from schedgym.atomic import atomic_write_text
from schedgym.registry import get_problem, make_solver
from schedgym.replay.fidelity import rank_correlation, replay
from schedgym.replay.kernels import calibrate_cpu

CASES = [
    ("jobshop", "la01", ["spt", "lpt", "fifo", "mor", "mwkr", "fdd-mwkr"], 200.0),  # 10 jobs x 5 machines
    ("socdag", "stream-rate40-noise0.2-s0", ["heft", "cpop", "heft-online", "eft", "etf", "met"], 50.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/replay_cpu.json")
    args = parser.parse_args()
    profile = calibrate_cpu()
    rows = []
    for problem, name, solvers, time_scale in CASES:
        spec = get_problem(problem)
        instance = spec.load_suite(name)[0]
        for solver in solvers:
            report, _ = replay(problem, instance, make_solver(problem, solver).solve(instance), profile=profile, time_scale=time_scale)
            rows.append({"solver": solver, **report.to_dict()})
            print(f"{problem:8} {name:28} {solver:12} simulated {report.simulated_makespan_us / 1e3:8.2f} ms  measured {report.measured_makespan_us / 1e3:8.2f} ms  "
                  f"error {report.makespan_error_pct:+6.1f}%  task error mean {report.task_error_pct_mean:6.1f}%")
    ranks = {}
    for problem, name, _, _ in CASES:
        mine = [r for r in rows if r["instance"] == name]
        key = "makespan_us" if problem == "jobshop" else "mean_job_us"
        ranks[name] = rank_correlation([r[f"simulated_{key}"] for r in mine], [r[f"measured_{key}"] for r in mine])
        print(f"{name}: Spearman rank correlation simulated vs measured {key}: {ranks[name]:.2f}")
    payload = {"profile": profile.unit_us, "machine": profile.machine, "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "rank_correlation": ranks, "rows": rows}
    atomic_write_text(args.out, json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
