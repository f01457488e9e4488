"""The exact packer ``pack`` on the MiniMalloc benchmark, side by side with CP-SAT and the greedy packers.

    python benchmarks/memmap_pack.py [--time-limit 10] [--minimalloc PATH]

Instances: the shipped ``minimalloc`` suite (A-F) and ``minimalloc-heldout`` (G-K, never used to tune the packer),
capacity 1,048,576 bytes. Each instance, in one run: ``pack`` (one thread) and ``cpsat`` (NoOverlap2D, 2 workers,
hinted with greedy-size) each given ``--time-limit`` s, and the three greedy packers; with ``--minimalloc``, also
the MiniMalloc solver itself (its command-line binary, built from its own repository; default settings, the same
time limit), side by side. ``pack`` goes on lowering the peak once it packs within the capacity; "pack s to
capacity" is the time to its first packing within it. Every packing is checked by the memmap validator; a row counts
as within capacity only if the validator finds nothing. Results go to ``benchmarks/results/memmap_pack.json`` and
``.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer, PackSolver, pack_buffers
from schedgym.envs.memmap import MemMapInstance, MemMapSolution, metrics, validate
from schedgym.envs.memmap.loaders import data_file
from schedgym.envs.memmap.suites import resolve_suite

RESULTS = Path(__file__).parent / "results"


def run_minimalloc(binary: str, instance: MemMapInstance, time_limit_s: float) -> dict:
    """The MiniMalloc binary on the instance's shipped CSV: its wall time and its packing as the validator sees it."""
    source = data_file(f"{instance.name}.{instance.capacity_bytes}.csv")
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "out.csv"
        begin = time.perf_counter()
        done = subprocess.run([binary, f"--capacity={instance.capacity_bytes}", f"--input={source}", f"--output={output}",
                               f"--timeout={time_limit_s:g}s"], capture_output=True, text=True)
        seconds = time.perf_counter() - begin
        if done.returncode != 0 or not output.exists():
            return {"peak": None, "valid": False, "wall_s": round(seconds, 3)}
        offset = np.array([int(row["offset"]) for row in csv.DictReader(open(output))], dtype=np.int64)
    solution = MemMapSolution(offset)
    return {"peak": int(metrics(instance, solution)["fast_bytes_peak"]), "valid": not validate(instance, solution), "wall_s": round(seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance for pack and cpsat")
    parser.add_argument("--minimalloc", metavar="PATH", help="MiniMalloc's command-line binary, run side by side as the reference")
    args = parser.parse_args()
    pack_buffers(np.array([0]), np.array([1]), np.array([1]), 1)  # compiles the search once (numba), outside every row
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
            row["pack"].update(status=result.status, nodes=result.nodes, search_s=round(result.seconds, 3),
                               first_packed_s=None if result.first_packed_s is None else round(result.first_packed_s, 3))
            if args.minimalloc:
                row["minimalloc"] = run_minimalloc(args.minimalloc, instance, args.time_limit)
            rows.append(row)
            print(json.dumps(row), flush=True)
    solvers = ("pack",) + (("minimalloc",) if args.minimalloc else ()) + ("cpsat", "greedy-size", "msa", "first-fit")
    reference = "minimalloc s | " if args.minimalloc else ""
    lines = [f"# pack on the MiniMalloc benchmark ({args.time_limit:g} s per instance for pack and cpsat; {platform.processor() or platform.machine()}, 2 cores)", "",
             "Peak offset used (bytes); `*` marks a packing within the capacity (1,048,576) that the validator accepts.", "",
             "| suite | instance | buffers | peak live bytes | pack status | pack s to capacity | pack s | " + reference + " | ".join(solvers) + " |",
             "|---|---|---:|---:|---|---:|---:|" + "---:|" * (len(solvers) + bool(args.minimalloc))]
    for row in rows:
        cells = [f"{row[s]['peak']:,}{'*' if row[s]['valid'] else ''}" if row[s]["peak"] is not None else "none" for s in solvers]
        times = f"{row['pack']['first_packed_s']} | {row['pack']['wall_s']} | " + (f"{row['minimalloc']['wall_s']} | " if args.minimalloc else "")
        lines.append(f"| {row['suite']} | {row['instance']} | {row['buffers']} | {row['lower_bound']:,} | {row['pack']['status']} | " + times + " | ".join(cells) + " |")
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
