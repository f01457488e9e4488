"""The jobshop sampling solver against CP-SAT and against whole sampled rollouts, all with the same time per instance.

    python benchmarks/sampling_search.py --instances ta41,...,ta50,ta71,ta72,ta73 --time-limit 10 --cpus 2

One run, instance by instance, each solver in turn with the same ``--time-limit`` and ``--cpus``:

* ``ppo-sample``: the registered solver (greedy, then rounds of rollouts that replay the first half or more of the
  best rollout so far and sample the rest), with ``--cpus`` torch threads;
* ``whole-samples``: the same policy, greedy, then rounds of ``--samples`` whole sampled rollouts (no replayed
  prefix) until the time is spent: what ``ppo-sample`` did before it followed the incumbent;
* ``deviations`` (not run by default): the same policy, greedy, then the ``deviations`` search memmap's
  ``ppo-sample`` runs (greedy rollouts taking the policy's second-ranked action at one or two consecutive decisions
  of the best rollout so far), then whole samples;
* ``cpsat-plain``: CP-SAT on the same model without a solution hint, ``--cpus`` workers;
* ``cpsat``: the registered CP-SAT solver (hinted with FDD/MWKR), ``--cpus`` workers;
* ``tabu``: the registered tabu search from the FDD/MWKR schedule (one thread);
* ``tabu-from-ppo``: the registered tabu search from the policy's greedy schedule (one thread for both).

``--solvers`` picks a subset (default: all, in this order).

Every schedule is checked by the jobshop validator. Gaps are to the best known upper bound.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from schedgym.agents.solvers import PpoSolver
from schedgym.atomic import atomic_write_text
from schedgym.baselines.jobshop import CpSatJobShop, DispatchingRule, TabuSearchSolver
from schedgym.envs.jobshop import load_benchmark, validate

TA41_TO_TA50 = [f"ta{i}" for i in range(41, 51)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default=",".join([*TA41_TO_TA50, "ta71", "ta72", "ta73"]))
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--cpus", type=int, default=2, help="torch threads of the samplers, CP-SAT workers")
    parser.add_argument("--samples", type=int, default=8, help="rollouts per round (both samplers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solvers", default="ppo-sample,whole-samples,cpsat-plain,cpsat,tabu,tabu-from-ppo", help="any of these and deviations")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sampling_search.json"))
    args = parser.parse_args()

    sampler = PpoSolver(name="ppo-sample", samples=args.samples, torch_threads=args.cpus, search="tail")
    whole_sampler = PpoSolver(name="whole-samples", samples=args.samples, torch_threads=args.cpus, search="whole")
    deviation_searcher = PpoSolver(name="deviations", samples=args.samples, torch_threads=args.cpus, search="deviations")
    greedy = PpoSolver(name="ppo", torch_threads=1)
    every_solver = {
        "ppo-sample": lambda inst: sampler.solve(inst, time_limit=args.time_limit, seed=args.seed),
        "whole-samples": lambda inst: whole_sampler.solve(inst, time_limit=args.time_limit, seed=args.seed),
        "deviations": lambda inst: deviation_searcher.solve(inst, time_limit=args.time_limit, seed=args.seed),
        "cpsat-plain": lambda inst: CpSatJobShop(num_workers=args.cpus, hint_rule=None).solve(inst, time_limit=args.time_limit, seed=args.seed),
        "cpsat": lambda inst: CpSatJobShop(num_workers=args.cpus).solve(inst, time_limit=args.time_limit, seed=args.seed),
        "tabu": lambda inst: TabuSearchSolver("tabu", DispatchingRule("fdd-mwkr")).solve(inst, time_limit=args.time_limit, seed=args.seed),
        "tabu-from-ppo": lambda inst: TabuSearchSolver("tabu-from-ppo", greedy).solve(inst, time_limit=args.time_limit, seed=args.seed),
    }
    solvers = {name: every_solver[name] for name in args.solvers.split(",")}
    rows = []
    for name in args.instances.split(","):
        instance = load_benchmark(name)
        line = [name]
        for solver_name, solve in solvers.items():
            started = time.perf_counter()
            solution = solve(instance)
            wall_s = time.perf_counter() - started
            errors = validate(instance, solution)
            if errors:
                raise AssertionError(f"{solver_name} made an invalid schedule on {name}: {errors[0]}")
            gap_pct = 100.0 * (solution.makespan(instance) / instance.upper_bound - 1.0)
            rows.append({"instance": name, "solver": solver_name, "makespan": int(solution.makespan(instance)),
                         "upper_bound": instance.upper_bound, "gap_pct": gap_pct, "wall_s": wall_s})
            line.append(f"{solver_name} {gap_pct:.2f}% ({wall_s:.1f} s)")
        print("  ".join(line), flush=True)

    groups = {"ta01-ta10": [f"ta{i:02d}" for i in range(1, 11)], "ta41-ta50": TA41_TO_TA50, "ta71-ta73": ["ta71", "ta72", "ta73"], "all": args.instances.split(",")}
    summary = []
    print(f"\n| instances | {' | '.join(solvers)} |\n|---|{'---:|' * len(solvers)}")
    for group, names in groups.items():
        chosen = [row for row in rows if row["instance"] in names]
        if not chosen:
            continue
        means = {s: float(np.mean([r["gap_pct"] for r in chosen if r["solver"] == s])) for s in solvers}
        walls = {s: float(np.mean([r["wall_s"] for r in chosen if r["solver"] == s])) for s in solvers}
        summary.append({"instances": group, "n": len(chosen) // len(solvers), "mean_gap_pct": means, "mean_wall_s": walls})
        print(f"| {group} | " + " | ".join(f"{means[s]:.2f}% ({walls[s]:.1f} s)" for s in solvers) + " |")
    result = {"machine": platform.platform(), "time_limit_s": args.time_limit, "cpus": args.cpus, "samples": args.samples,
              "seed": args.seed, "rows": rows, "summary": summary}
    atomic_write_text(Path(args.out), json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
