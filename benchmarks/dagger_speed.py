"""DAgger labelling throughput: states labelled per second while a network drives the episodes, one episode at a
time against ``parallel`` episodes side by side (one batched forward pass for all of them), in one run.

Each shipped policy drives the first DAgger round of its recipe (``Recipe.student_demonstrations``, with
``bc_instances`` and ``dagger_parallel`` set here; socdag: generated streams labelled by ``srpt``; memmap: generated
traces labelled by CP-SAT's best completion, whose solves do not batch), with the recipe's ``torch_threads``.

    python benchmarks/dagger_speed.py [--streams 12] [--traces 48] [--parallel 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from schedgym.agents.checkpoint import load_network
from schedgym.agents.recipes import RECIPES
from schedgym.agents.train import TrainConfig
from schedgym.atomic import atomic_write_text


def labelled_per_s(config: TrainConfig, net: torch.nn.Module) -> tuple[float, int]:
    """(states labelled per second, states) of the first DAgger round of ``config``'s recipe, ``net`` driving."""
    started = time.perf_counter()
    demos = RECIPES[config.problem].student_demonstrations(config, net, 0)
    return len(demos) / (time.perf_counter() - started), len(demos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=12)
    parser.add_argument("--traces", type=int, default=48)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dagger_speed.json")
    args = parser.parse_args()
    rows = []
    episodes = {"socdag": args.streams, "memmap": args.traces}
    for problem, n_episodes in episodes.items():
        config = replace(TrainConfig.for_problem(problem), bc_instances=n_episodes)
        torch.set_num_threads(config.torch_threads)
        net = load_network(f"{problem}-default", problem)[0]
        one, states = labelled_per_s(replace(config, dagger_parallel=1), net)
        many, _ = labelled_per_s(replace(config, dagger_parallel=args.parallel), net)
        rows.append({"problem": problem, "states": states, "one_by_one_per_s": one, "side_by_side_per_s": many, "speedup": many / one})
        print(f"{problem}: {states} states, {one:.0f}/s one by one, {many:.0f}/s {args.parallel} side by side ({many / one:.2f}x)", flush=True)
    result = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}", "parallel": args.parallel, "rows": rows}
    atomic_write_text(args.out, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
