"""Write the shipped policies' leaderboard figures (agents/policies/leaderboard.json) from a leaderboard JSON.

    python benchmarks/policy_zoo_figures.py benchmarks/results/default_leaderboard.json

For every suite where ``ppo`` ran (and, for the job-shop improvement policy, ``l2s``), the figure is its mean gap %
(or mean objective where the suite has no bounds) and its rank among the solvers of that suite, ranked as in the
leaderboard's Markdown tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schedgym.agents.checkpoint import DEFAULT_POLICY
from schedgym.atomic import atomic_write_text
from schedgym.bench import suite_tables

#: Leaderboard solvers other than ``ppo`` that run a shipped policy: (problem, solver) -> policy.
LEARNED_SOLVERS = {("jobshop", "l2s"): DEFAULT_POLICY["jobshop-improve"]}
OUT = Path(__file__).resolve().parents[1] / "agents" / "policies" / "leaderboard.json"


def zoo_figures(result: dict) -> dict[str, list[dict]]:
    """``{policy name: [{suite, solver, mean_gap_pct, mean_objective, rank, of}]}`` for the default policies."""
    figures: dict[str, list[dict]] = {}
    tables = suite_tables(result)
    for row in result["summary"]:
        policy = LEARNED_SOLVERS.get((row["problem"], row["solver"])) or (DEFAULT_POLICY.get(row["problem"]) if row["solver"] == "ppo" else None)
        if policy is None:
            continue
        ranking = tables[(row["problem"], row["suite"])][0]
        solvers = [cells[1] for cells in ranking.cells]
        figures.setdefault(policy, []).append({
            "suite": row["suite"], "mean_gap_pct": row["mean_gap_pct"], "mean_objective": row["mean_objective"],
            "rank": solvers.index(row["solver"]) + 1, "of": len(solvers),
        })
    return figures


def main(path: str) -> None:
    result = json.loads(Path(path).read_text())
    payload = {"source": f"`schedgym bench` (the default leaderboard) on 2 CPU cores: {Path(path).name}", "policies": zoo_figures(result)}
    atomic_write_text(OUT, json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
