"""How far a router can go below the routing heuristics: the latency floors of a request served alone on an idle
replica.

    python benchmarks/llmrouting_floors.py

For the Azure and Mooncake conversation traces at 0.85, 0.9 and 0.95 of the measured capacity of 4 replicas, one
run prints and writes:

* the TTFT floor: each request's TTFT alone on an idle replica (its prompt prefilled in chunks of the token budget,
  no queue, no decodes sharing the iterations, no prefix-cache hit), and its p99 over the trace. On Azure, which has
  no shared prefixes, no router can make a request's first token come sooner, so a router's p99 TTFT is at least
  this; on Mooncake a prefix-cache hit can beat it;
* the end-to-end latency alone: that TTFT plus every later token decoded alone (a decode iteration of batch 1 at
  the request's own context), averaged over the trace. Batching only lengthens iterations, except that the profile
  is read at the batch's *mean* context (a long request batched with short ones decodes a few % faster than alone)
  and extrapolated below its smallest measured context, so this is the floor up to those few %;
* every heuristic router's p99 TTFT and mean end-to-end latency (validated routing logs), the ratio of 0.8 x the
  best p99 TTFT (the target of a trained router) to the TTFT floor, and the ratio of the end-to-end latency alone
  to round-robin's (a trained router is asked for 0.89 x round-robin).
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


def idle_replica_decode_s(instance: RoutingInstance) -> np.ndarray:
    """Time ``[n_requests]`` from each request's first token to its last, alone on an idle replica 0 (seconds): one
    decode iteration of batch 1 per later token, at the context it has then. Its TTFT alone plus this is its
    end-to-end latency alone."""
    spec, profile, workload = instance.replicas[0], instance.profile, instance.workload
    return np.array([
        profile.decode_times_s(1, prompt + np.arange(output - 1, dtype=float)).sum() / spec.speed if output > 1 else 0.0
        for prompt, output in zip(workload.prompt_tokens.tolist(), workload.output_tokens.tolist())
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_floors.json")
    args = parser.parse_args()
    rows = []
    for workload in ("azure-conv", "mooncake-conv"):
        for load in LOADS:
            instance = make_instance(base_workload(workload), load, 4, f"{workload}-{load:g}-4")
            ttft_alone_s = idle_replica_ttft_s(instance)
            floor_p99_s = float(np.percentile(ttft_alone_s, 99))
            alone_e2e_s = float((ttft_alone_s + idle_replica_decode_s(instance)).mean())
            p99_s, e2e_s = {}, {}
            for name in ROUTERS:
                solution = Router(name).solve(instance, seed=0)
                if validate(instance.workload, solution):
                    raise SystemExit(f"{name} produced an invalid routing log on {instance.name}")
                figures = metrics(instance.workload, solution)
                p99_s[name], e2e_s[name] = figures["ttft_p99_s"], figures["e2e_mean_s"]
            best = min(p99_s, key=p99_s.get)
            rows.append({"workload": workload, "load": load, "floor_p99_ttft_s": floor_p99_s, "p99_ttft_s": p99_s,
                         "best_heuristic": best, "target_over_floor": 0.8 * p99_s[best] / floor_p99_s,
                         "alone_mean_e2e_s": alone_e2e_s, "mean_e2e_s": e2e_s, "e2e_alone_over_rr": alone_e2e_s / e2e_s["rr"]})
            print(f"{workload} at {load}: floor p99 TTFT {floor_p99_s:.4f} s; best heuristic {best} {p99_s[best]:.4f} s; "
                  f"0.8x best = {0.8 * p99_s[best]:.4f} s = {rows[-1]['target_over_floor']:.2f}x the floor; "
                  f"mean e2e alone {alone_e2e_s:.4f} s = {rows[-1]['e2e_alone_over_rr']:.2f}x rr's {e2e_s['rr']:.4f} s", flush=True)
    atomic_write_text(args.out, json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
