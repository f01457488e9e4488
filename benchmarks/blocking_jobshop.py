"""The blocking job shop with swaps and shutdowns: every solver side by side on the blocking suites, in one run.

    python benchmarks/blocking_jobshop.py --classes 15x15 --rates 0,0.05,0.1 --time-limit 10

Per suite ``blocking-taillard-<class>[-shutdown<rate>]``, in this order: the seven blocking-aware rules and the
shipped policy greedy (``ppo``), CP-SAT given the time the policy took on the instance (``cpsat@ppo-time``, at least
0.1 s), then ``ppo-sample`` and ``cpsat`` given ``--time-limit`` each. CP-SAT knows every shutdown in advance;
``ppo-sample``'s rollouts meet the same shutdowns (both are hindsight figures with shutdowns); the rules and ``ppo``
meet each one when it begins. Every schedule is checked by the validator. The instances were never seen in
training (the policy trains on generated ones). Printed and written: mean makespan per solver and suite, and each
solver's mean gap to the best of the six deterministic rules on each instance (negative: better).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.baselines.jobshop import RULE_SCORES
from schedgym.bench import BenchRun, run_bench

PROBLEM = "jobshop-blocking"
RULES = list(RULE_SCORES)
DETERMINISTIC_RULES = [rule for rule in RULES if rule != "random"]
RESULTS = Path(__file__).resolve().parent / "results"


def suite_name(size: str, rate: float) -> str:
    return f"blocking-taillard-{size}" + (f"-shutdown{rate:g}" if rate > 0 else "")


def run_suite(suite: str, time_limit_s: float) -> list[dict]:
    """Every row of one suite, the CP-SAT rows relabelled by their budget."""
    rows = run_bench([BenchRun(PROBLEM, suite, [*RULES, "ppo"])], progress=False)["rows"]
    ppo_time = {row["instance"]: row["wall_s"] for row in rows if row["solver"] == "ppo"}
    for instance, wall_s in ppo_time.items():
        short = run_bench([BenchRun(PROBLEM, suite, ["cpsat"], max(0.1, wall_s), instances=[instance])], progress=False)["rows"]
        rows += [{**row, "solver": "cpsat@ppo-time"} for row in short]
    rows += run_bench([BenchRun(PROBLEM, suite, ["ppo-sample", "cpsat"], time_limit_s)], progress=False)["rows"]
    return rows


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Per solver: mean makespan and mean gap % to the best deterministic rule per instance over the instances it
    solved, mean wall s, valid % and failed (no schedule in time: CP-SAT on a short budget)."""
    best_rule: dict[str, float] = {}
    for row in rows:
        if row["solver"] in DETERMINISTIC_RULES and row["valid"]:
            best_rule[row["instance"]] = min(best_rule.get(row["instance"], np.inf), row["objective"])
    table = {}
    for solver in dict.fromkeys(row["solver"] for row in rows):
        every = [row for row in rows if row["solver"] == solver]
        mine = [row for row in every if row["objective"] is not None]
        table[solver] = {
            "mean_makespan": float(np.mean([row["objective"] for row in mine])),
            "gap_to_best_rule_pct": float(np.mean([100 * (row["objective"] - best_rule[row["instance"]]) / best_rule[row["instance"]] for row in mine])),
            "mean_wall_s": float(np.mean([row["wall_s"] for row in every])),
            "valid_pct": 100.0 * float(np.mean([row["valid"] for row in every])),
            "n": len(every),
            "failed": len(every) - len(mine),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", default="15x15", help="Taillard classes with blocking suites, comma-separated")
    parser.add_argument("--rates", default="0,0.05,0.1", help="shutdown rates, comma-separated")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance for ppo-sample and cpsat")
    parser.add_argument("--out", default=str(RESULTS / "blocking_jobshop"), help="output stem (.json and .md are written)")
    args = parser.parse_args()
    suites = [suite_name(size, float(rate)) for size in args.classes.split(",") for rate in args.rates.split(",")]
    result = {"machine": f"{platform.node()} ({platform.machine()})", "time_limit_s": args.time_limit, "suites": {}}
    lines = ["| suite | solver | mean makespan | gap to best rule % | mean wall s | valid % | failed |", "|---|---|---:|---:|---:|---:|---:|"]
    for suite in suites:
        rows = run_suite(suite, args.time_limit)
        table = summarize(rows)
        result["suites"][suite] = {"summary": table, "rows": rows}
        for solver, figures in sorted(table.items(), key=lambda item: (item[1]["failed"], item[1]["mean_makespan"])):
            lines.append(
                f"| {suite} | {solver} | {figures['mean_makespan']:.1f} | {figures['gap_to_best_rule_pct']:+.2f} | {figures['mean_wall_s']:.3g} "
                f"| {figures['valid_pct']:.0f} | {figures['failed']} |"
            )
        print("\n".join(lines[-len(table):]), flush=True)
    atomic_write_text(f"{args.out}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(f"{args.out}.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
