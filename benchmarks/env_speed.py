"""Job-shop env throughput: schedgym's JobShop-v0 vs job_shop_lib's SingleJobShopGraphEnv, measured side by side.

Both envs are driven by the same kind of policy, a uniformly random legal action, and both return their full
observation every step. Also times every dispatching rule on each instance (one full schedule).

    python benchmarks/env_speed.py --instances ta01,ta71 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from schedgym.baselines.jobshop import RULE_SCORES, DispatchingRule
from schedgym.envs.jobshop import JobShopEnv, load_benchmark


def schedgym_steps_per_s(name: str, seconds: float) -> float:
    env = JobShopEnv(name, action_filter="legal")
    rng = np.random.default_rng(0)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        env.reset(seed=steps)
        terminated = False
        while not terminated:
            _, _, terminated, _, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
            steps += 1
    return steps / (time.perf_counter() - started)


def job_shop_lib_steps_per_s(name: str, seconds: float) -> float | None:
    try:
        from job_shop_lib.benchmarking import load_benchmark_instance
        from job_shop_lib.dispatching.feature_observers import FeatureObserverType
        from job_shop_lib.graphs import build_resource_task_graph
        from job_shop_lib.reinforcement_learning import SingleJobShopGraphEnv
    except ImportError:
        return None
    env = SingleJobShopGraphEnv(
        build_resource_task_graph(load_benchmark_instance(name)),
        feature_observer_configs=[FeatureObserverType.IS_READY, FeatureObserverType.DURATION, FeatureObserverType.REMAINING_OPERATIONS],
    )
    rng = np.random.default_rng(0)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        _, info = env.reset(seed=steps)
        done = False
        while not done:
            choices = info["available_operations_with_ids"]  # (operation id, machine id, job id)
            _, machine, job = choices[int(rng.integers(len(choices)))]
            _, _, done, _, info = env.step((job, machine))
            steps += 1
    return steps / (time.perf_counter() - started)


def rule_wall_s(name: str, repeats: int = 3) -> dict[str, float]:
    instance = load_benchmark(name)
    timings = {}
    for rule in RULE_SCORES:
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            DispatchingRule(rule).solve(instance, seed=0)
            best = min(best, time.perf_counter() - started)
        timings[rule] = best
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default="ta01,ta71")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per env and instance")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "env_speed.json"))
    args = parser.parse_args()
    rows = []
    for name in args.instances.split(","):
        ours = schedgym_steps_per_s(name, args.seconds)
        theirs = job_shop_lib_steps_per_s(name, args.seconds)
        rules = rule_wall_s(name)
        rows.append({"instance": name, "schedgym_steps_per_s": ours, "job_shop_lib_steps_per_s": theirs,
                     "ratio": ours / theirs if theirs else None, "rule_wall_s": rules})
        ratio = f"{ours / theirs:.1f}x" if theirs else "n/a (pip install job-shop-lib)"
        print(f"{name}: schedgym {ours:,.0f} steps/s | job_shop_lib {theirs or 0:,.0f} steps/s | ratio {ratio}")
        print("  rule wall time (s): " + ", ".join(f"{r} {t:.3f}" for r, t in rules.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
