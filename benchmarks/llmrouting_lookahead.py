"""How much any router can win on the Azure conversation trace: two look-ahead routers that know the future of every
replica, against the routing heuristics.

    python benchmarks/llmrouting_lookahead.py [--windows 1]

At each arrival a look-ahead router copies the simulator once per replica, routes the request there, and serves that
replica's requests as if nothing arrived after them (``ServingSimulator.run_replica``), output lengths included:

* ``lookahead-ttft``: the replica where this request's first token comes soonest;
* ``lookahead-e2e``: the replica where the finish times of its requests grow the least, counting this request's own
  end-to-end latency and the delay it causes the requests already there.

No real router knows output lengths or the replicas' future, and these two look one request ahead (a router that
also planned for later arrivals could do better), so they are not baselines; they show how much room the state and
the actions of ``LlmRouting-v0`` leave. A trained router is asked for 0.8 x the best heuristic's p99 TTFT and 0.89 x
round-robin's mean end-to-end latency on azure-conv near saturation. Every routing log is validated. Results go to
``results/llmrouting_lookahead.{json,md}``.
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
from schedgym.baselines.llmrouting import ROUTERS, Router
from schedgym.envs.llmrouting import RoutingInstance, RoutingSolution, ServingSimulator, make_instance, metrics, validate
from schedgym.envs.llmrouting.suites import base_workload

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1, help="blocks of 2,000 requests of the trace to run, from its start")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_lookahead")
    args = parser.parse_args()
    solvers = {name: Router(name).solve for name in ROUTERS}
    solvers["lookahead-ttft"] = lambda instance, seed: lookahead_route(instance, "ttft")
    solvers["lookahead-e2e"] = lambda instance, seed: lookahead_route(instance, "e2e")
    rows = []
    for window in range(args.windows):
        for load in LOADS:
            instance = make_instance(base_workload("azure-conv", window), load, 4, f"azure-conv-w{window}-{load:g}-4")
            for name, solve in solvers.items():
                started = time.perf_counter()
                solution = solve(instance, seed=0)
                wall_s = time.perf_counter() - started
                if validate(instance.workload, solution):
                    raise SystemExit(f"{name} produced an invalid routing log on {instance.name}")
                rows.append({"window": window, "load": load, "solver": name, "wall_s": wall_s, **metrics(instance.workload, solution)})
                print(f"window {window} load {load:g} {name:18s} p99 TTFT {rows[-1]['ttft_p99_s']:.4f} s, mean e2e {rows[-1]['e2e_mean_s']:.4f} s ({wall_s:.0f} s)", flush=True)
    lines = ["| window | load | solver | p99 TTFT (s) | vs best heuristic | mean e2e (s) | vs rr |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        peers = [r for r in rows if (r["window"], r["load"]) == (row["window"], row["load"])]
        row["ttft_p99_vs_best_heuristic"] = row["ttft_p99_s"] / min(r["ttft_p99_s"] for r in peers if r["solver"] in ROUTERS)
        row["e2e_vs_rr"] = row["e2e_mean_s"] / next(r for r in peers if r["solver"] == "rr")["e2e_mean_s"]
        lines.append(
            f"| {row['window']} | {row['load']:g} | {row['solver']} | {row['ttft_p99_s']:.4f} | {row['ttft_p99_vs_best_heuristic']:.3f} | "
            f"{row['e2e_mean_s']:.4f} | {row['e2e_vs_rr']:.3f} |"
        )
    print("\n".join(lines))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"machine": platform.platform(), "windows": args.windows, "rows": rows}, indent=1))
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
