"""Batched job-shop engine throughput: decisions/s of JobShopBatch at B = 1, 16, 256 beside the single JobShopEnv.

    python benchmarks/batched_env_speed.py --sizes 15x15 --seconds 3 --repeats 3

Every configuration runs the same policy, a uniformly random legal job per decision, on generated Taillard-style
instances (15x15 = ta01's size), with the training options of the shipped policies (Giffler-Thompson filter,
forced decisions skipped) and the full graph observation written every decision. The configurations run in turns
within one process, ``--repeats`` times, so that they share the machine's state; peak memory is the tracemalloc
peak of building and running each (numpy arrays included), taken in a separate untimed pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

from schedgym.agents.rollout import POLICY_ENV_OPTIONS
from schedgym.envs.jobshop import JobShopEnv, TaillardGenerator, parse_sizes
from schedgym.envs.jobshop.batched import JobShopBatch
from schedgym.atomic import atomic_write_text


def single_env(sizes: str, seconds: float) -> float:
    """Decisions/s of one JobShopEnv (Gymnasium API, one observation per step)."""
    env = JobShopEnv(TaillardGenerator(parse_sizes(sizes)), **POLICY_ENV_OPTIONS)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    decisions, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        _, _, terminated, _, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        decisions += 1
        if terminated:
            env.reset()
    return decisions / (time.perf_counter() - started)


def batched(sizes: str, n_envs: int, seconds: float) -> float:
    """Decisions/s summed over the slots of a JobShopBatch (auto-reset, observations of all slots every step)."""
    batch = JobShopBatch(TaillardGenerator(parse_sizes(sizes)), n_envs, seed=0, **POLICY_ENV_OPTIONS)
    batch.reset()
    rng = np.random.default_rng(0)
    decisions, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        masks = batch.action_masks()
        batch.step((rng.random(masks.shape) * masks).argmax(1))  # a random legal job per slot, vectorized
        decisions += n_envs
    return decisions / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="15x15")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "batched_env_speed.json"))
    args = parser.parse_args()
    configurations = {"JobShopEnv": lambda: single_env(args.sizes, args.seconds)}
    for n_envs in (1, 16, 256):
        configurations[f"JobShopBatch B={n_envs}"] = lambda n=n_envs: batched(args.sizes, n, args.seconds)
    batched(args.sizes, 4, 0.2)  # compile the kernels (cached on disk afterwards) before timing anything
    rates: dict[str, list[float]] = {name: [] for name in configurations}
    peaks: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, run in configurations.items():
            rates[name].append(run())
    for name, run in configurations.items():  # memory in a pass of its own: tracing slows every allocation
        tracemalloc.start()
        run()
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    reference = np.median(rates["JobShopEnv"])
    rows = []
    for name, values in rates.items():
        row = {
            "engine": name, "decisions_per_s_median": float(np.median(values)), "decisions_per_s_min": float(np.min(values)),
            "decisions_per_s_max": float(np.max(values)), "x_single_env": float(np.median(values) / reference),
            "peak_traced_mib": peaks[name],
        }
        rows.append(row)
        print(f"{name:22s} {row['decisions_per_s_median']:>10.0f} decisions/s  ({row['x_single_env']:.1f}x JobShopEnv)  peak {row['peak_traced_mib']:.1f} MiB")
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "sizes": args.sizes, "seconds": args.seconds, "repeats": args.repeats}
    atomic_write_text(Path(args.out), json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
