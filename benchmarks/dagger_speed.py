"""DAgger labelling throughput: states labelled per second while a network drives the episodes, one episode at a
time against ``parallel`` episodes side by side (one batched forward pass for all of them), in one run.

Each shipped policy drives episodes drawn as in its recipe's DAgger rounds (socdag: generated streams labelled by
``srpt``; memmap: generated traces labelled by CP-SAT's best completion, whose solves do not batch), with
``torch_threads`` threads.

    python benchmarks/dagger_speed.py [--streams 12] [--traces 48] [--parallel 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from schedgym.agents.checkpoint import load_network
from schedgym.agents.imitation import collect_placement_demonstrations, collect_rule_demonstrations
from schedgym.agents.recipes import _stream_generator, _trace_generator
from schedgym.agents.train import TrainConfig
from schedgym.atomic import atomic_write_text


def labelled_per_s(collect, parallel: int) -> tuple[float, int]:
    """(states labelled per second, states) of ``collect(parallel)``."""
    started = time.perf_counter()
    demos = collect(parallel)
    return len(demos) / (time.perf_counter() - started), len(demos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=12)
    parser.add_argument("--traces", type=int, default=48)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dagger_speed.json")
    args = parser.parse_args()
    rows = []
    socdag, memmap = TrainConfig.for_problem("socdag"), TrainConfig.for_problem("memmap")
    torch.set_num_threads(socdag.torch_threads)
    cases = {
        "socdag": lambda net, parallel: collect_rule_demonstrations(
            _stream_generator(socdag), args.streams, socdag.bc_seed + 1000, socdag.socdag_teacher, socdag.binding, net, parallel
        ),
        "memmap": lambda net, parallel: collect_placement_demonstrations(
            _trace_generator(memmap), args.traces, memmap.bc_seed + 1000, memmap.bc_time_limit_s, net, parallel
        ),
    }
    for problem, collect in cases.items():
        net = load_network(f"{problem}-default", problem)[0]
        one, states = labelled_per_s(lambda parallel: collect(net, parallel), 1)
        many, _ = labelled_per_s(lambda parallel: collect(net, parallel), args.parallel)
        rows.append({"problem": problem, "states": states, "one_by_one_per_s": one, "side_by_side_per_s": many, "speedup": many / one})
        print(f"{problem}: {states} states, {one:.0f}/s one by one, {many:.0f}/s {args.parallel} side by side ({many / one:.2f}x)", flush=True)
    result = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}", "parallel": args.parallel, "rows": rows}
    atomic_write_text(args.out, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
