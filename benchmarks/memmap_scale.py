"""memmap at compiler scale: decisions per second and peak memory on programs of about 1,000 to 10,000 buffers.

    python benchmarks/memmap_scale.py [--programs NAME,...]

Per program of ``traced-large`` (default: the 1,028-buffer ResNet and the 9,792-buffer head-by-head transformer, both
at 50% capacity), each workload in a fresh process (so its peak resident memory is its own):

* ``trace``: tracing the model into the instance (torch.fx on the meta device), cold;
* ``env``: one ``MemoryMappingEnv`` episode (observations included), the best-fit candidate at every decision;
* ``batch``: ``MemMapBatch`` with 8 slots of the program, one episode each, the first legal action everywhere;
* ``placer``: the ``msa`` greedy placer (one solve);
* ``completion``: the compiled completion ``ppo-mcts`` values its leaves with (MSA-like order, best fit), from the
  first decision;
* ``policy``: the shipped placer's network, one forward pass per decision (20 decisions; one thread);
* ``validate``: the independent validator on the ``msa`` map.

Each reports decisions per second (buffers decided / wall time), the wall time, the resident memory after the
imports and the peak resident memory of its process (``ru_maxrss``). Results: ``results/memmap_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

WORKLOADS = ("trace", "env", "batch", "placer", "completion", "policy", "validate")
DEFAULT_PROGRAMS = ("resnet-64x68x32-b8-c50", "transformer-heads-1024x16x512x64-b1-c50")

MEASURE = r"""
import json, resource, sys, time
import numpy as np, torch
from schedgym.envs.memmap import MemoryMappingEnv, kernels, validate
from schedgym.envs.memmap.batched import MemMapBatch
from schedgym.envs.memmap.suites import resolve_suite
from schedgym.baselines.memmap.heuristics import GreedyPlacer, buffer_order

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20

name, workload = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
if workload == "trace":
    base = rss_mb()
    started = time.perf_counter()
    instance = resolve_suite(name)[0]
    wall_s, decisions = time.perf_counter() - started, 0
else:
    instance = resolve_suite(name)[0]
    warm = MemoryMappingEnv([resolve_suite("mlp-1024x2048x2048x2048x1024x512-b32-c25")[0]])  # load the compiled kernels
    warm.reset(seed=0)
    kernels.complete_best_fit(warm.tables, warm.state, buffer_order(warm.instance, "msa"))
    base = rss_mb()
    started = time.perf_counter()
    decisions = instance.n_buffers
    if workload == "env":
        env = MemoryMappingEnv([instance])
        env.reset(seed=0)
        done = False
        while not done:
            best = kernels.best_fit_index(env.state.candidate_left, int(env.state.counts[kernels.N_CANDIDATES]))
            done = env.step(best + 1)[2]  # slow memory (0) where no candidate fits
    elif workload == "batch":
        batch = MemMapBatch([instance], n_envs=8, seed=0)
        batch.reset()
        started = time.perf_counter()
        for _ in range(instance.n_buffers):
            batch.step(batch.observation["action_mask"].argmax(axis=1))
        decisions = 8 * instance.n_buffers
    elif workload == "placer":
        GreedyPlacer("msa").solve(instance)
    elif workload == "completion":
        env = MemoryMappingEnv([instance])
        env.reset(seed=0)
        order = buffer_order(instance, "msa")
        started = time.perf_counter()
        kernels.complete_best_fit(env.tables, env.state, order)
    elif workload == "policy":
        from schedgym.agents.checkpoint import load_network
        from schedgym.agents.rollout import policy_envs, stack_observations
        net, _ = load_network("memmap-default", "memmap")
        env = policy_envs("memmap", [instance], net)[0]
        obs = env.reset(seed=0)[0]
        decisions = 20
        started = time.perf_counter()
        with torch.inference_mode():
            for _ in range(decisions):
                logits, _ = net(stack_observations([obs]))
                masks = torch.from_numpy(env.action_masks()[None])
                obs = env.step(int(logits.masked_fill(~masks, float("-inf")).argmax()))[0]
    elif workload == "validate":
        solution = GreedyPlacer("msa").solve(instance)
        started = time.perf_counter()
        assert validate(instance, solution) == []
    wall_s = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"program": name, "buffers": instance.n_buffers, "overlap_entries": int(sum(len(o) for o in instance.overlaps)),
                  "workload": workload, "wall_s": wall_s, "decisions_per_s": decisions / wall_s if decisions else None,
                  "rss_after_imports_mb": base, "peak_rss_mb": peak_mb}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", default=",".join(DEFAULT_PROGRAMS))
    args = parser.parse_args()
    rows = []
    for program in args.programs.split(","):
        for workload in WORKLOADS:
            out = subprocess.run([sys.executable, "-c", MEASURE, program, workload], check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            row = rows[-1]
            rate = f"{row['decisions_per_s']:,.0f}/s" if row["decisions_per_s"] else "-"
            print(f"{program:45s} {workload:10s} {rate:>12s} {row['wall_s']:8.3f} s  peak {row['peak_rss_mb']:7.0f} MB", flush=True)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    lines = [
        "| program | buffers | overlap entries | workload | decisions/s | wall s | RSS after imports MB | peak RSS MB |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        rate = f"{row['decisions_per_s']:,.0f}" if row["decisions_per_s"] else "-"
        lines.append(
            f"| {row['program']} | {row['buffers']:,} | {row['overlap_entries']:,} | {row['workload']} | {rate} | {row['wall_s']:.3f} "
            f"| {row['rss_after_imports_mb']:.0f} | {row['peak_rss_mb']:.0f} |"
        )
    for suffix, text in (("json", json.dumps(rows, indent=1)), ("md", "\n".join(lines) + "\n")):
        tmp = results / f".memmap_scale.{suffix}.tmp"
        tmp.write_text(text)
        tmp.replace(results / f"memmap_scale.{suffix}")


if __name__ == "__main__":
    main()
