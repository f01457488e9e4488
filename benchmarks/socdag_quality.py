"""socdag streaming quality: every solver's mean job duration per (rate, noise) group over the suite's seeds,
and its ratio to online HEFT and to the best rule, measured in one run.

    python benchmarks/socdag_quality.py                      # socdag-stream-low and socdag-stream-high
    python benchmarks/socdag_quality.py --policy runs/socdag.zip
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict
from pathlib import Path

import numpy as np

from schedgym.bench import BenchRun, run_bench

SOLVERS = ["heft", "cpop", "heft-online", "eft", "etf", "met", "srpt", "random", "ppo"]
RULES = [s for s in SOLVERS if s != "ppo"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="socdag-stream-low,socdag-stream-high")
    parser.add_argument("--policy", default="", help="checkpoint for ppo (default: the shipped socdag-default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "socdag_quality")
    args = parser.parse_args()
    runs = [BenchRun("socdag", suite, SOLVERS) for suite in args.suites.split(",")]
    rows = run_bench(runs, solver_options={"policy": args.policy} if args.policy else None)["rows"]
    invalid = [r for r in rows if not r["valid"]]
    if invalid:
        raise SystemExit(f"{len(invalid)} invalid rows, e.g. {invalid[0]['solver']} on {invalid[0]['instance']}")

    by_instance: dict[str, dict[str, float]] = defaultdict(dict)
    group_of = {}
    for row in rows:
        by_instance[row["instance"]][row["solver"]] = row["objective"]
        group_of[row["instance"]] = row["group"]
    table = []
    for group in dict.fromkeys(group_of.values()):
        names = [i for i, g in group_of.items() if g == group]
        for solver in SOLVERS:
            values = np.array([by_instance[i][solver] for i in names])
            vs_heft = np.array([by_instance[i][solver] / by_instance[i]["heft-online"] for i in names])
            vs_best = np.array([by_instance[i][solver] / min(by_instance[i][r] for r in RULES) for i in names])
            table.append({
                "group": group, "solver": solver, "seeds": len(names),
                "mean_job_duration_us": float(values.mean()), "std_us": float(values.std()),
                "ratio_vs_heft_online": float(vs_heft.mean()), "ratio_vs_heft_online_max": float(vs_heft.max()),
                "ratio_vs_best_rule": float(vs_best.mean()), "ratio_vs_best_rule_max": float(vs_best.max()),
            })
    lines = ["| group | solver | mean job duration (us), mean ± std over seeds | x online HEFT (mean / worst) | x best rule (mean / worst) |", "|---|---|---|---|---|"]
    for t in table:
        lines.append(
            f"| {t['group']} | {t['solver']} | {t['mean_job_duration_us']:.1f} ± {t['std_us']:.1f} | "
            f"{t['ratio_vs_heft_online']:.3f} / {t['ratio_vs_heft_online_max']:.3f} | {t['ratio_vs_best_rule']:.3f} / {t['ratio_vs_best_rule_max']:.3f} |"
        )
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": platform.platform(), "table": table, "rows": rows}, indent=1, default=str))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
