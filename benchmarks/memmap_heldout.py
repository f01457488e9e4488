"""memmap placers on model families they never saw: leave one family out, per family of ``traced-models``.

    python benchmarks/memmap_heldout.py [--policies runs/memmap-heldout]

For each family F of the suite (mlp, resnet, transformer), the placer trained on traces of the other two families
(``schedgym train memmap --trace-families ...``, the shipped recipe otherwise) places the suite's traces of F. The
shipped ``memmap-default`` leaves out transformers; the other two are trained here if ``--policies`` has no
``no-F.zip`` yet (5 to 7 minutes each on 2 cores). On each trace, in one run:

* ``msa``, ``first-fit``, ``greedy-size``: the greedy placers;
* ``ppo``: the held-out placer, greedy;
* ``cpsat-same-time``: the hinted ``cpsat`` given the wall time ``ppo`` took on that trace;
* ``ppo-sample``: the held-out placer, greedy then its search (a steepest descent through the network's runner-up
  decisions, each followed greedily or by the current map's later decisions, then rounds of 8 whole sampled
  placements) for ``--sample-time`` s;
* ``cpsat-sample-time``: the hinted ``cpsat`` given the wall time ``ppo-sample`` took on that trace;
* ``cpsat``: the hinted ``cpsat`` given 10 s (optimal on these traces).

Every map is checked by the memmap validator. The figure is the mean improvement over all-slow memory per family and
over all traces, and the placer's ratios (greedy and sampling) to MSA-like's.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from schedgym.agents.solvers import PpoSolver
from schedgym.agents.train import TrainConfig
from schedgym.atomic import atomic_write_text
from schedgym.baselines.memmap import CpSatMemMap, GreedyPlacer
from schedgym.envs.memmap import metrics, validate
from schedgym.envs.memmap.suites import resolve_suite

FAMILIES = ("mlp", "resnet", "transformer")
RULES = ("msa", "first-fit", "greedy-size")
SOLVERS = (*RULES, "ppo", "cpsat-same-time", "ppo-sample", "cpsat-sample-time", "cpsat")


def held_out_policy(family: str, folder: Path) -> str:
    """The placer trained without ``family``: the shipped ``memmap-default`` if its recipe leaves out just that
    family, else ``folder/no-<family>.zip`` (trained now if it is not there yet)."""
    others = ",".join(f for f in FAMILIES if f != family)
    if TrainConfig.for_problem("memmap").trace_families == others:
        return "memmap-default"
    path = folder / f"no-{family}.zip"
    if not path.exists():
        command = [sys.executable, "-m", "schedgym.cli", "train", "memmap", "--trace-families", others, "--out", str(path), "--log-dir", str(folder / "runs")]
        print("training:", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=Path, default=Path("runs/memmap-heldout"), help="folder of the no-<family>.zip placers")
    parser.add_argument("--sample-time", type=float, default=1.0, help="seconds per trace for ppo-sample")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "memmap_heldout")
    args = parser.parse_args()
    args.policies.mkdir(parents=True, exist_ok=True)
    instances = resolve_suite("traced-models")
    rows = []
    for family in FAMILIES:
        policy = held_out_policy(family, args.policies)
        placer = PpoSolver(problem="memmap", policy=policy)
        sampler = PpoSolver(name="ppo-sample", problem="memmap", policy=policy, samples=8)
        for instance in (i for i in instances if i.name.startswith(f"{family}-")):
            maps = {rule: GreedyPlacer(rule).solve(instance) for rule in RULES}
            started = time.perf_counter()
            maps["ppo"] = placer.solve(instance)
            ppo_wall_s = time.perf_counter() - started
            maps["cpsat-same-time"] = CpSatMemMap().solve(instance, time_limit=ppo_wall_s, seed=0)
            started = time.perf_counter()
            maps["ppo-sample"] = sampler.solve(instance, time_limit=args.sample_time, seed=0)
            sample_wall_s = time.perf_counter() - started
            maps["cpsat-sample-time"] = CpSatMemMap().solve(instance, time_limit=sample_wall_s, seed=0)
            maps["cpsat"] = CpSatMemMap().solve(instance, time_limit=10.0, seed=0)
            for solver, solution in maps.items():
                violations = validate(instance, solution)
                if violations:
                    raise SystemExit(f"{solver} made an invalid map of {instance.name}: {violations[0]}")
            row = {"family": family, "instance": instance.name, "ppo_wall_s": ppo_wall_s, "ppo_sample_wall_s": sample_wall_s}
            row.update({solver: metrics(instance, solution)["improvement_pct"] for solver, solution in maps.items()})
            rows.append(row)
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    lines = ["| held-out family | traces | " + " | ".join(SOLVERS) + " | ppo / msa | ppo-sample / msa |", "|---|---:|" + "---:|" * (len(SOLVERS) + 2)]
    for family in (*FAMILIES, "all"):
        chosen = [r for r in rows if family in ("all", r["family"])]
        means = {s: float(np.mean([r[s] for r in chosen])) for s in SOLVERS}
        lines.append(f"| {family} | {len(chosen)} | " + " | ".join(f"{means[s]:.2f}" for s in SOLVERS) + f" | {means['ppo'] / means['msa']:.3f} | {means['ppo-sample'] / means['msa']:.3f} |")
    table = "\n".join(lines)
    print("\nmean improvement over all-slow memory (%)\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))
    atomic_write_text(args.out.with_suffix(".md"), table + "\n")


if __name__ == "__main__":
    main()
