"""socdag simulator throughput: decisions per second of every online rule and of the env (observation included).

A decision is one task committed to one PE (a late-binding wait is not counted for the rules; the env counts every
step). Runs streams of 300 jobs at the two suite rates (40 and 80 jobs/ms, noise 0.2); the env is driven by
uniformly random legal actions.

    python benchmarks/socdag_speed.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from schedgym.baselines.socdag import ONLINE_RULES, OnlineRule, StaticListScheduler
from schedgym.envs.socdag import SocDagEnv, stream_instance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "socdag_speed.json")
    args = parser.parse_args()
    rows = []
    for rate in (40.0, 80.0):
        instance = stream_instance(rate, args.jobs, 0.2, seed=0)
        solvers = [OnlineRule(name) for name in ONLINE_RULES] + [StaticListScheduler("heft"), StaticListScheduler("cpop")]
        for solver in solvers:
            started = time.perf_counter()
            solver.solve(instance, seed=0)
            elapsed = time.perf_counter() - started
            rows.append({"what": solver.name, "rate_per_ms": rate, "decisions_per_s": instance.n_tasks / elapsed})
        for mode, binding in (("order", "early"), ("pair", "early"), ("pair", "late")):
            env = SocDagEnv(instance, mode=mode, binding=binding)
            env.reset(seed=0)
            rng = np.random.default_rng(0)
            steps, started, done = 0, time.perf_counter(), False
            while not done:
                _, _, done, _, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
                steps += 1
            rows.append({"what": f"env ({mode} mode, {binding} binding, random actions)", "rate_per_ms": rate, "decisions_per_s": steps / (time.perf_counter() - started)})
    for row in rows:
        print(f"{row['what']:<34} rate {row['rate_per_ms']:>4g}/ms  {row['decisions_per_s']:>10,.0f} decisions/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "jobs": args.jobs, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
