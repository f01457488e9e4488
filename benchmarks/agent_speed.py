"""Agent costs: PPO training throughput, greedy inference latency per decision and per instance, peak memory.

    python benchmarks/agent_speed.py --policy jobshop-default --train-steps 4096

Training throughput is measured on a short MaskablePPO run with the recipe's settings (no warm start), counting
env steps (decisions) per second of wall time, rollouts and gradient steps included. Each inference figure is taken
twice, in fresh processes one after the other: with glibc's default heap settings and with the heap pad that
:func:`schedgym.agents.heap.keep_freed_heap_memory` sets for every rollout, so their ratio comes from one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from schedgym.agents.checkpoint import load_network
from schedgym.agents.heap import keep_freed_heap_memory
from schedgym.agents.rollout import POLICY_ENV_OPTIONS, stack_observations
from schedgym.agents.train import TrainConfig, train
from schedgym.envs.jobshop import JobShopEnv


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_steps_per_s(steps: int) -> float:
    config = replace(TrainConfig(), total_steps=steps, bc_instances=0, eval_every_steps=10**9, checkpoint_every_steps=10**9, val_instances_per_size=1)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        train(config, Path(folder) / "p.zip", log_dir=None, progress_bar=False)
        return steps / (time.perf_counter() - started)


@torch.no_grad()
def inference(policy: str, name: str, threads: int, heap_pad: bool) -> dict:
    """One greedy rollout of ``policy`` on instance ``name``; run it in a fresh process (the heap pad is for life)."""
    if heap_pad:
        keep_freed_heap_memory()
    torch.set_num_threads(threads)
    net, _ = load_network(policy)
    env = JobShopEnv(name, **POLICY_ENV_OPTIONS)
    obs, _ = env.reset(seed=0)
    decisions, network_s, started = 0, 0.0, time.perf_counter()
    terminated = False
    while not terminated:
        t = time.perf_counter()
        logits, _ = net(stack_observations([obs]))
        network_s += time.perf_counter() - t
        logits = logits[0].masked_fill(~torch.from_numpy(env.action_masks()), float("-inf"))
        obs, _, terminated, _, _ = env.step(int(logits.argmax()))
        decisions += 1
    total_s = time.perf_counter() - started
    return {"instance": name, "threads": threads, "heap_pad": heap_pad, "decisions": decisions, "instance_s": total_s,
            "per_decision_ms": 1e3 * total_s / decisions, "network_per_decision_ms": 1e3 * network_s / decisions,
            "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="jobshop-default")
    parser.add_argument("--train-steps", type=int, default=4096)
    parser.add_argument("--instances", default="ta01,ta71")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "agent_speed.json"))
    args = parser.parse_args()
    settings = [(args.policy, name, threads, pad) for name in args.instances.split(",") for threads in (1, 2) for pad in (False, True)]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        rows = pool.starmap(inference, settings, chunksize=1)
    for row in rows:
        heap = "heap pad" if row["heap_pad"] else "glibc default"
        print(f"{row['instance']} ({row['threads']} thread(s), {heap}): {row['decisions']} decisions, {row['instance_s']:.2f} s per instance, "
              f"{row['per_decision_ms']:.2f} ms per decision ({row['network_per_decision_ms']:.2f} ms in the network)")
    for default, padded in zip(rows[::2], rows[1::2]):
        print(f"{default['instance']}, {default['threads']} thread(s): the heap pad makes a rollout {default['instance_s'] / padded['instance_s']:.2f}x faster")
    inference_peak = max(row["peak_rss_mib"] for row in rows)
    print(f"peak memory of an inference process: {inference_peak:.0f} MiB")
    train_rate = training_steps_per_s(args.train_steps)
    print(f"training throughput: {train_rate:.0f} env steps/s ({args.train_steps} steps, 16 envs, 2 torch threads)")
    print(f"peak memory of the training process: {peak_rss_mib():.0f} MiB")
    result = {"machine": platform.platform(), "inference": rows, "train_env_steps_per_s": train_rate,
              "peak_rss_mib_inference": inference_peak, "peak_rss_mib_training": peak_rss_mib()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
