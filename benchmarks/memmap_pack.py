"""The exact packer ``pack`` on the MiniMalloc benchmark, side by side with CP-SAT and the greedy packers.

    python benchmarks/memmap_pack.py [--time-limit 10]

Instances: the shipped ``minimalloc`` suite (A-F) and ``minimalloc-heldout`` (G-K, never used to tune the packer),
capacity 1,048,576 bytes. Each instance, in one run: ``pack`` (one thread) and ``cpsat`` (NoOverlap2D, 2 workers,
hinted with greedy-size) each given ``--time-limit`` s, and the three greedy packers. Every packing is checked by
the memmap validator; a row counts as within capacity only if the validator finds nothing. Results go to
``benchmarks/results/memmap_pack.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from schedgym.atomic import atomic_write_text
from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer, PackSolver
from schedgym.envs.memmap import metrics, validate
from schedgym.envs.memmap.suites import resolve_suite

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance for pack and cpsat")
    args = parser.parse_args()
    rows = []
    for suite in ("minimalloc", "minimalloc-heldout"):
        for instance in resolve_suite(suite):
            row = {"suite": suite, "instance": instance.name, "buffers": instance.n_buffers, "lower_bound": instance.peak_live_bytes()}
            pack = PackSolver()
            for name, solver in (("pack", pack), ("cpsat", CpSatMemMap(num_workers=2)), ("greedy-size", GreedyPlacer("greedy-size")),
                                 ("msa", GreedyPlacer("msa")), ("first-fit", GreedyPlacer("first-fit"))):
                begin = time.perf_counter()
                solution = solver.solve(instance, time_limit=args.time_limit)
                seconds = time.perf_counter() - begin
                row[name] = {"peak": int(metrics(instance, solution)["fast_bytes_peak"]), "valid": not validate(instance, solution), "wall_s": round(seconds, 3)}
            result = pack.last_result
            row["pack"].update(status=result.status, nodes=result.nodes, search_s=round(result.seconds, 3))
            rows.append(row)
            print(json.dumps(row), flush=True)
    solvers = ("pack", "cpsat", "greedy-size", "msa", "first-fit")
    lines = [f"# pack on the MiniMalloc benchmark ({args.time_limit:g} s per instance for pack and cpsat; {platform.processor() or platform.machine()}, 2 cores)", "",
             "Peak offset used (bytes); `*` marks a packing within the capacity (1,048,576) that the validator accepts.", "",
             "| suite | instance | buffers | peak live bytes | pack status | pack s | " + " | ".join(solvers) + " |",
             "|---|---|---:|---:|---|---:|" + "---:|" * len(solvers)]
    for row in rows:
        cells = [f"{row[s]['peak']:,}{'*' if row[s]['valid'] else ''}" for s in solvers]
        lines.append(f"| {row['suite']} | {row['instance']} | {row['buffers']} | {row['lower_bound']:,} | {row['pack']['status']} | {row['pack']['wall_s']} | " + " | ".join(cells) + " |")
    for suite in ("minimalloc", "minimalloc-heldout"):
        these = [r for r in rows if r["suite"] == suite]
        lines.append("")
        lines.append(f"{suite}: within capacity: " + ", ".join(f"{s} {sum(r[s]['valid'] for r in these)}/{len(these)}" for s in solvers))
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "memmap_pack.json", json.dumps({"time_limit_s": args.time_limit, "rows": rows}, indent=1))
    atomic_write_text(RESULTS / "memmap_pack.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
