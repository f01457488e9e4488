"""Batched engine throughput: decisions/s of a problem's batched engine at B = 1, 16, 256 beside its single env.

    python benchmarks/batched_env_speed.py --problem jobshop --sizes 15x15 --seconds 3 --repeats 3
    python benchmarks/batched_env_speed.py --problem socdag
    python benchmarks/batched_env_speed.py --problem memmap
    python benchmarks/batched_env_speed.py --problem llmrouting
    python benchmarks/batched_env_speed.py --problem jobshop-blocking --sizes 15x15

Every configuration runs the same policy, a uniformly random legal action per decision, with the full graph
observation written every decision; the clock runs only inside ``step`` (and the resets it triggers), not while the
random policy draws its actions:

* ``jobshop``: generated Taillard-style instances (``--sizes``; 15x15 = ta01's size) with the training options of
  the shipped policies (Giffler-Thompson filter, forced decisions skipped).
* ``jobshop-blocking``: the same instances as blocking shops with swaps, shutdowns at rate 0.05, with the training
  options of the shipped policy (forced moves skipped); ``BlockingJobShopBatch`` is B envs stepped in a loop, each
  step one compiled call.
* ``socdag``: the training workload (``StreamGenerator()``: streams of 30 jobs) in the shipped policy's action
  space (``pair`` mode, late binding, so waiting is one of the random actions).
* ``memmap``: 64 instances drawn from the training workload (``TraceGenerator()``: traced MLPs and ResNets of up
  to about 70 buffers) before the clock starts, each slot drawing from that pool: tracing a fresh program costs
  about 40 ms, far more than its episode, so a fresh draw per episode would time the tracer, not the engine.
* ``llmrouting``: 64 instances drawn from the training workload (``RoutingGenerator()``: 300 requests on 2-8
  replicas at 0.75-1.0 load) before the clock starts, for the same reason; a decision routes one request.

The configurations run in turns within one process, ``--repeats`` times, so that they share the machine's state;
peak memory is the tracemalloc peak of building and running each (numpy arrays included), taken in a separate
untimed pass. Results go to ``results/batched_env_speed_<problem>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from schedgym.agents.rollout import BLOCKING_POLICY_ENV_OPTIONS, POLICY_ENV_OPTIONS
from schedgym.atomic import atomic_write_text
from schedgym.envs.jobshop import JobShopEnv, TaillardGenerator, parse_sizes
from schedgym.envs.jobshop.batched import JobShopBatch
from schedgym.envs.jobshop.blocking_env import BlockingJobShopBatch, BlockingJobShopEnv
from schedgym.envs.llmrouting import LlmRoutingEnv, RoutingGenerator
from schedgym.envs.llmrouting.batched import LlmRoutingBatch
from schedgym.envs.memmap import MemoryMappingEnv
from schedgym.envs.memmap.batched import MemMapBatch
from schedgym.envs.memmap.tracer import TraceGenerator
from schedgym.envs.socdag import SocDagEnv, StreamGenerator
from schedgym.envs.socdag.batched import SocDagBatch

SOCDAG_OPTIONS = {"mode": "pair", "binding": "late"}


def engines(problem: str, sizes: str) -> tuple[str, Callable[[], Any], str, Callable[[int], Any]]:
    """(env name, env factory, engine name, engine factory taking B) of ``problem``."""
    if problem == "jobshop":
        return (
            "JobShopEnv", lambda: JobShopEnv(TaillardGenerator(parse_sizes(sizes)), **POLICY_ENV_OPTIONS),
            "JobShopBatch", lambda n: JobShopBatch(TaillardGenerator(parse_sizes(sizes)), n, seed=0, **POLICY_ENV_OPTIONS),
        )
    if problem == "jobshop-blocking":
        options = {"shutdown_rate": 0.05, **BLOCKING_POLICY_ENV_OPTIONS}
        return (
            "BlockingJobShopEnv", lambda: BlockingJobShopEnv(TaillardGenerator(parse_sizes(sizes)), **options),
            "BlockingJobShopBatch", lambda n: BlockingJobShopBatch(TaillardGenerator(parse_sizes(sizes)), n, seed=0, **options),
        )
    if problem == "llmrouting":
        generator, rng = RoutingGenerator(), np.random.default_rng(0)
        pool = [generator(rng) for _ in range(64)]
        return (
            "LlmRoutingEnv", lambda: LlmRoutingEnv(pool),
            "LlmRoutingBatch", lambda n: LlmRoutingBatch(pool, n, seed=0),
        )
    if problem == "memmap":
        generator, rng = TraceGenerator(), np.random.default_rng(0)
        pool = [generator(rng) for _ in range(64)]
        options = {"max_buffers": generator.max_buffers, "max_edges": generator.max_edges}
        return (
            "MemoryMappingEnv", lambda: MemoryMappingEnv(pool, **options),
            "MemMapBatch", lambda n: MemMapBatch(pool, n, seed=0, **options),
        )
    return (
        "SocDagEnv", lambda: SocDagEnv(StreamGenerator(), **SOCDAG_OPTIONS),
        "SocDagBatch", lambda n: SocDagBatch(StreamGenerator(), n, seed=0, **SOCDAG_OPTIONS),
    )


def single_env(make_env: Callable[[], Any], seconds: float) -> float:
    """Decisions/s of one Gymnasium env (one observation per step)."""
    env = make_env()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    decisions, stepping, started = 0, 0.0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        action = int(rng.choice(np.flatnonzero(env.action_masks())))
        begin = time.perf_counter()
        _, _, terminated, _, _ = env.step(action)
        if terminated:
            env.reset()
        stepping += time.perf_counter() - begin
        decisions += 1
    return decisions / stepping


def batched(make_batch: Callable[[int], Any], n_envs: int, seconds: float) -> float:
    """Decisions/s summed over the slots of a batched engine (auto-reset, observations of all slots every step)."""
    batch = make_batch(n_envs)
    batch.reset()
    rng = np.random.default_rng(0)
    decisions, stepping, started = 0, 0.0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        masks = batch.action_masks()
        actions = (rng.random(masks.shape) * masks).argmax(1)  # a random legal action per slot, vectorized
        begin = time.perf_counter()
        batch.step(actions)
        stepping += time.perf_counter() - begin
        decisions += n_envs
    return decisions / stepping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", choices=("jobshop", "jobshop-blocking", "socdag", "llmrouting", "memmap"), default="jobshop")
    parser.add_argument("--sizes", default="15x15", help="jobshop instance sizes")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="default: results/batched_env_speed_<problem>.json")
    args = parser.parse_args()
    out = Path(args.out or Path(__file__).parent / "results" / f"batched_env_speed_{args.problem}.json")
    env_name, make_env, engine_name, make_batch = engines(args.problem, args.sizes)
    configurations = {env_name: lambda: single_env(make_env, args.seconds)}
    for n_envs in (1, 16, 256):
        configurations[f"{engine_name} B={n_envs}"] = lambda n=n_envs: batched(make_batch, n, args.seconds)
    batched(make_batch, 4, 0.2)  # compile the kernels (cached on disk afterwards) before timing anything
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
    reference = np.median(rates[env_name])
    rows = []
    for name, values in rates.items():
        row = {
            "engine": name, "decisions_per_s_median": float(np.median(values)), "decisions_per_s_min": float(np.min(values)),
            "decisions_per_s_max": float(np.max(values)), "x_single_env": float(np.median(values) / reference),
            "peak_traced_mib": peaks[name],
        }
        rows.append(row)
        print(f"{name:22s} {row['decisions_per_s_median']:>10.0f} decisions/s  ({row['x_single_env']:.1f}x {env_name})  peak {row['peak_traced_mib']:.1f} MiB")
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "problem": args.problem, "seconds": args.seconds, "repeats": args.repeats}
    if args.problem in ("jobshop", "jobshop-blocking"):
        meta["sizes"] = args.sizes
    elif args.problem == "socdag":
        meta["options"] = SOCDAG_OPTIONS
    atomic_write_text(out, json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
