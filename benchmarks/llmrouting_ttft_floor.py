"""How far below the best routing heuristic p99 TTFT can go: the floor of a request served alone on an idle replica.

    python benchmarks/llmrouting_ttft_floor.py

For the Azure and Mooncake conversation traces at 0.85, 0.9 and 0.95 of the measured capacity of 4 replicas, one
run prints and writes:

* the floor: each request's TTFT alone on an idle replica (its prompt prefilled in chunks of the token budget, no
  queue, no decodes sharing the iterations, no prefix-cache hit), and its p99 over the trace. On Azure, which has
  no shared prefixes, no router can make a request's first token come sooner, so a router's p99 TTFT is at least
  this; on Mooncake a prefix-cache hit can beat it;
* every heuristic router's p99 TTFT (validated routing logs), the best of them, and the ratio of 0.8 x the best
  (the target of a trained router) to the floor.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.baselines.llmrouting import ROUTERS, Router
from schedgym.envs.llmrouting import RoutingInstance, make_instance, metrics, validate
from schedgym.envs.llmrouting.suites import base_workload

LOADS = (0.85, 0.9, 0.95)


def idle_replica_ttft_s(instance: RoutingInstance) -> np.ndarray:
    """TTFT ``[n_requests]`` of each request alone on an idle replica 0 (seconds)."""
    spec, profile = instance.replicas[0], instance.profile
    ttft_s = []
    for prompt in instance.workload.prompt_tokens.tolist():
        chunks = [spec.token_budget] * (prompt // spec.token_budget) + ([prompt % spec.token_budget] if prompt % spec.token_budget else [])
        ttft_s.append(sum(profile.prefill_time_s(chunk) for chunk in chunks) / spec.speed)
    return np.array(ttft_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_ttft_floor.json")
    args = parser.parse_args()
    rows = []
    for workload in ("azure-conv", "mooncake-conv"):
        for load in LOADS:
            instance = make_instance(base_workload(workload), load, 4, f"{workload}-{load:g}-4")
            floor_p99_s = float(np.percentile(idle_replica_ttft_s(instance), 99))
            p99_s = {}
            for name in ROUTERS:
                solution = Router(name).solve(instance, seed=0)
                if validate(instance.workload, solution):
                    raise SystemExit(f"{name} produced an invalid routing log on {instance.name}")
                p99_s[name] = metrics(instance.workload, solution)["ttft_p99_s"]
            best = min(p99_s, key=p99_s.get)
            rows.append({"workload": workload, "load": load, "floor_p99_ttft_s": floor_p99_s, "p99_ttft_s": p99_s,
                         "best_heuristic": best, "target_over_floor": 0.8 * p99_s[best] / floor_p99_s})
            print(f"{workload} at {load}: floor p99 TTFT {floor_p99_s:.4f} s; best heuristic {best} {p99_s[best]:.4f} s; "
                  f"0.8x best = {0.8 * p99_s[best]:.4f} s = {rows[-1]['target_over_floor']:.2f}x the floor", flush=True)
    atomic_write_text(args.out, json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
