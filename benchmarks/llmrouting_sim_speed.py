"""Speed of the llmrouting serving simulator: simulated requests per second with rule routers.

    python benchmarks/llmrouting_sim_speed.py [--reference CHECKOUT] [--repeats 3]

Times ``Router(rule).solve`` on each suite's trace (the simulator and the router, the whole trace), best of
``--repeats``, each in a fresh process. With ``--reference`` (another checkout of this repository, e.g.
``git worktree add /tmp/ref <commit>``) the same runs use that checkout's code in turns with ours, and the mean
end-to-end latency of both routings is printed, so a faster simulator is seen to serve the same schedule. The aim
for the simulator is 20,000 simulated requests/s with a rule router on 4 replicas and 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from reference_checkout import measure_in_turns, package_view, write_results

SUITES = ("azure-conv-high-4", "mooncake-conv-high-4", "sharegpt-poisson-high-4", "azure-conv-high-8")
RULES = ("rr", "jsq-tokens")

MEASURE = """
import json, sys, time
from schedgym.baselines.llmrouting import Router
from schedgym.envs.llmrouting import metrics, resolve_suite
instance = resolve_suite(sys.argv[1])[0]
started = time.perf_counter()
solution = Router(sys.argv[2]).solve(instance, seed=0)
wall_s = time.perf_counter() - started
print(json.dumps({"wall_s": wall_s, "requests": instance.workload.n_requests, "e2e_mean_s": metrics(instance.workload, solution)["e2e_mean_s"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="another checkout of this repository to time side by side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_sim_speed.json")
    args = parser.parse_args()
    codes = {"ours": None}
    with tempfile.TemporaryDirectory() as folder:
        if args.reference:
            codes["reference"] = package_view(args.reference, Path(folder))
        rows = []
        for suite in SUITES:
            for rule in RULES:
                runs = measure_in_turns(MEASURE, [suite, rule], codes, args.repeats)
                row = {"suite": suite, "rule": rule, "requests": runs["ours"][0]["requests"]}
                for code, results in runs.items():
                    row[f"{code}_req_per_s"] = row["requests"] / min(r["wall_s"] for r in results)
                    row[f"{code}_e2e_mean_s"] = results[0]["e2e_mean_s"]
                line = f"{suite} {rule}: {row['ours_req_per_s']:,.0f} req/s"
                if args.reference:
                    row["speedup"] = row["ours_req_per_s"] / row["reference_req_per_s"]
                    line += f", reference {row['reference_req_per_s']:,.0f} req/s ({row['speedup']:.2f}x); mean e2e {row['ours_e2e_mean_s']:.6f} s vs {row['reference_e2e_mean_s']:.6f} s"
                print(line, flush=True)
                rows.append(row)
    write_results(args.out, rows, args.repeats, args.reference)


if __name__ == "__main__":
    main()
