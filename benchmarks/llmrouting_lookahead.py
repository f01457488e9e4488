"""How much any router can win: two look-ahead routers that know the future of every replica, against the routing
heuristics (and ``llumnix-migrate``, which may also migrate).

    python benchmarks/llmrouting_lookahead.py [--windows 1]            # azure-conv at loads 0.85, 0.9, 0.95
    python benchmarks/llmrouting_lookahead.py --suites mooncake-conv-kv-high-4 mixed-hetero-high-8 --windows 2 \
        --policy llmrouting-default llmrouting-pressure --out benchmarks/results/llmrouting_lookahead_pressure

With ``--suites``, each named suite runs on ``--windows`` blocks of its trace (block ``k`` of
:func:`~schedgym.envs.llmrouting.suites.base_workload`; block 0 is the suite itself), at the suite's load and
cluster. ``--policy`` adds trained routers (greedy).

At each arrival a look-ahead router copies the simulator once per replica, routes the request there, and serves that
replica's requests as if nothing arrived after them (``ServingSimulator.run_replica``), output lengths included:

* ``lookahead-ttft``: the replica where this request's first token comes soonest;
* ``lookahead-e2e``: the replica where the finish times of its requests grow the least, counting this request's own
  end-to-end latency and the delay it causes the requests already there.

No real router knows output lengths or the replicas' future, and these two look one request ahead (a router that
also planned for later arrivals could do better), so they are not baselines; they show how much room the state and
the actions of ``LlmRouting-v0`` leave. A trained router is asked for 0.8 x the best heuristic's p99 TTFT and 0.89 x
round-robin's mean end-to-end latency at loads >= 0.85. Every routing log is validated. Results go to
``results/llmrouting_lookahead.{json,md}`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.baselines.llmrouting import ROUTERS, LlumnixMigrate, Router
from schedgym.envs.llmrouting import RoutingInstance, RoutingSolution, ServingSimulator, make_instance, metrics, validate
from schedgym.envs.llmrouting.suites import LOADS as SUITE_LOADS
from schedgym.envs.llmrouting.suites import SUITE_PARTS, base_workload

LOADS = (0.85, 0.9, 0.95)


def first_token_s_if(sim: ServingSimulator, request: int, replica: int) -> float:
    """When ``request``'s first token would come if routed to ``replica`` and nothing arrived after it (seconds)."""
    ahead = copy.deepcopy(sim)
    ahead.route(request, replica)
    ahead.run_replica(replica, until_first_token_of=request)
    return float(ahead.first_token_s[request])


def finish_s_sum_if(sim: ServingSimulator, replica: int, request: int | None) -> float:
    """Sum of the finish times (seconds) of the unfinished requests at ``replica``, plus ``request`` if it is routed
    there, when nothing arrives after them."""
    ahead = copy.deepcopy(sim)
    if request is not None:
        ahead.route(request, replica)
    members = np.flatnonzero((ahead.replica == replica) & np.isnan(ahead.finish_s))
    ahead.run_replica(replica)
    return float(ahead.finish_s[members].sum())


def lookahead_route(instance: RoutingInstance, objective: str) -> RoutingSolution:
    """Route ``instance`` with ``lookahead-ttft`` (``objective="ttft"``) or ``lookahead-e2e`` (``"e2e"``)."""
    sim = instance.simulator()
    n_replicas = len(sim.replicas)
    for request, arrival_s in enumerate(instance.workload.arrival_s.tolist()):
        sim.advance_to(arrival_s)
        if objective == "ttft":
            cost = [first_token_s_if(sim, request, k) for k in range(n_replicas)]
        else:
            cost = [finish_s_sum_if(sim, k, request) - finish_s_sum_if(sim, k, None) for k in range(n_replicas)]
        sim.route(request, int(np.argmin(cost)))
    sim.run_to_completion()
    return instance.solution_of(sim)


def instances(suites: list[str], windows: int) -> list[tuple[str, int, float, RoutingInstance]]:
    """(suite, window, load, instance) to run: each suite on ``windows`` trace blocks, or without suites azure-conv
    at :data:`LOADS` on 4 default replicas."""
    if not suites:
        return [("azure-conv", window, load, make_instance(base_workload("azure-conv", window), load, 4, f"azure-conv-w{window}-{load:g}-4"))
                for window in range(windows) for load in LOADS]
    unknown = [suite for suite in suites if suite not in SUITE_PARTS]
    if unknown:
        raise SystemExit(f"unknown suites {unknown}; choose among {', '.join(SUITE_PARTS)}")
    chosen = []
    for suite in suites:
        workload, cluster, level, n_replicas = SUITE_PARTS[suite]
        for window in range(windows):
            instance = make_instance(base_workload(workload, window), SUITE_LOADS[level], n_replicas, f"{suite}-w{window}", cluster=cluster)
            chosen.append((suite, window, SUITE_LOADS[level], instance))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="*", default=[], help="suite names (default: azure-conv at loads 0.85, 0.9, 0.95)")
    parser.add_argument("--windows", type=int, default=1, help="trace blocks per suite (azure-conv: blocks of 2,000 requests), from the start")
    parser.add_argument("--policy", nargs="*", default=[], help="also run these trained routers (shipped names or checkpoints), greedy")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_lookahead")
    args = parser.parse_args()
    solvers = {name: Router(name).solve for name in ROUTERS}
    solvers["llumnix-migrate"] = LlumnixMigrate().solve
    if args.policy:
        from schedgym.agents.solvers import PpoSolver

        for policy in args.policy:
            solvers[f"ppo:{Path(policy).stem}"] = PpoSolver(problem="llmrouting", policy=policy).solve
    solvers["lookahead-ttft"] = lambda instance, seed: lookahead_route(instance, "ttft")
    solvers["lookahead-e2e"] = lambda instance, seed: lookahead_route(instance, "e2e")
    rows = []
    for suite, window, load, instance in instances(args.suites, args.windows):
        for name, solve in solvers.items():
            started = time.perf_counter()
            solution = solve(instance, seed=0)
            wall_s = time.perf_counter() - started
            if validate(instance.workload, solution):
                raise SystemExit(f"{name} produced an invalid routing log on {instance.name}")
            rows.append({"suite": suite, "window": window, "load": load, "solver": name, "wall_s": wall_s, **metrics(instance.workload, solution)})
            print(f"{suite} window {window} load {load:g} {name:18s} p99 TTFT {rows[-1]['ttft_p99_s']:.4f} s, mean e2e {rows[-1]['e2e_mean_s']:.4f} s ({wall_s:.0f} s)", flush=True)
    lines = ["| suite | window | load | solver | p99 TTFT (s) | vs best heuristic | mean e2e (s) | vs rr |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peers = [r for r in rows if (r["suite"], r["window"], r["load"]) == (row["suite"], row["window"], row["load"])]
        row["ttft_p99_vs_best_heuristic"] = row["ttft_p99_s"] / min(r["ttft_p99_s"] for r in peers if r["solver"] in ROUTERS)
        row["e2e_vs_rr"] = row["e2e_mean_s"] / next(r for r in peers if r["solver"] == "rr")["e2e_mean_s"]
        lines.append(
            f"| {row['suite']} | {row['window']} | {row['load']:g} | {row['solver']} | {row['ttft_p99_s']:.4f} | {row['ttft_p99_vs_best_heuristic']:.3f} | "
            f"{row['e2e_mean_s']:.4f} | {row['e2e_vs_rr']:.3f} |"
        )
    print("\n".join(lines))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"machine": platform.platform(), "suites": args.suites, "windows": args.windows, "rows": rows}, indent=1))
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
