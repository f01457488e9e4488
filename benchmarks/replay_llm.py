"""Simulated against replayed on the LLM engine: calibrate the llmrouting latency profile on the engine (the
Llama-3.2-1B shape with random weights), take the Azure conversation trace at 0.9 of the measured capacity of 4
replicas under that profile (its first N requests), route it with three routers, and replay each routing log on the
engine (4 replicas on one device, each with its own clock advanced by its own measured iterations). Prints and
writes simulated vs replayed mean and p99 TTFT and end-to-end latency with the % errors.

    python benchmarks/replay_llm.py --device cuda --out DIR [--requests N]
    python benchmarks/replay_llm.py --device cpu --tiny --out DIR      # smoke run: the tiny model on the CPU

Writes DIR/profile_engine.json (the calibrated profile), DIR/replay_llm.json and DIR/replay_llm.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from schedgym.atomic import atomic_write_text
from schedgym.envs.llmrouting import LatencyProfile, ReplicaSpec, RoutingInstance, measured_capacity_rps, validate
from schedgym.envs.llmrouting.suites import base_workload
from schedgym.registry import make_solver
from schedgym.replay.llm_engine import LlamaConfig
from schedgym.replay.llm_replay import COMPARED, build_engine, calibrate_llm_profile, replay_routing

ROUTERS = ("rr", "jsq-tokens", "llumnix")


def say(text: str) -> None:
    print(text, flush=True)


def table(rows: list[dict]) -> list[str]:
    """Markdown: per router, simulated / replayed / error of each compared latency."""
    header = "| router | " + " | ".join(f"{key} sim | {key} replay | error" for key in COMPARED) + " | busy s | iterations |"
    lines = [header, "|---" * (2 + 3 * len(COMPARED) + 1) + "|"]
    for row in rows:
        cells = " | ".join(f"{row['simulated'][k]:.4f} | {row['replayed'][k]:.4f} | {row['error_pct'][k]:+.1f}%" for k in COMPARED)
        lines.append(f"| {row['router']} | {cells} | {row['busy_s']:.1f} | {row['iterations']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "replay_llm")
    parser.add_argument("--requests", type=int, default=None, help="first N requests of the trace (default 300; 40 with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="the tiny model (CPU smoke run) instead of the 1B one")
    parser.add_argument("--load", type=float, default=0.9, help="arrival rate as a fraction of the measured capacity")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--routers", default=",".join(ROUTERS))
    parser.add_argument("--repeats", type=int, default=None, help="timings per calibration point (default 20; 3 with --tiny)")
    args = parser.parse_args()
    config = LlamaConfig.tiny() if args.tiny else LlamaConfig.llama_1b()
    n_requests = args.requests or (40 if args.tiny else 300)
    repeats = args.repeats or (3 if args.tiny else 20)
    started = time.perf_counter()

    profile_path = args.out / "profile_engine.json"
    say(f"calibrating {config.describe()} on {args.device} -> {profile_path}")
    calibrate_llm_profile(args.device, config, profile_path, repeats=repeats, warmups=1 if args.tiny else 3, progress=say)
    profile = LatencyProfile.load(profile_path)
    say(f"calibrated in {time.perf_counter() - started:.0f} s")

    replicas = (ReplicaSpec(),) * args.replicas
    rate_rps = args.load * measured_capacity_rps(base_workload("azure-conv"), replicas, profile)
    name = f"azure-conv-{args.load:g}-{args.replicas}-first{n_requests}"
    workload = base_workload("azure-conv").at_rate(rate_rps, name=name, group=name).head(n_requests)
    instance = RoutingInstance(name, workload, replicas, profile, group=name)
    engine = build_engine(instance, device=args.device, config=config)
    say(f"{name}: {n_requests} requests at {rate_rps:.1f} req/s over {workload.arrival_s[-1]:.1f} s; KV pool {engine.cache.size_bytes / 2**30:.1f} GiB")

    rows = []
    for router in args.routers.split(","):
        solution = make_solver("llmrouting", router).solve(instance, seed=0)
        violations = validate(workload, solution)
        if violations:  # a profile measured with noise can be faster at a longer context, which the validator's bound assumes away
            say(f"warning: the validator rejects {len(violations)} requests of {router}'s simulated routing log: {violations[0]}")
        report, _ = replay_routing(instance, solution, device=args.device, config=config, engine=engine)
        rows.append({"router": router, **report.to_dict()})
        errors = ", ".join(f"{k} {report.simulated[k]:.4f} -> {report.replayed[k]:.4f} s ({report.error_pct[k]:+.1f}%)" for k in COMPARED)
        say(f"{router:12} {report.iterations} iterations, busy {report.busy_s:.1f} s, wall {report.wall_s:.1f} s, {engine.n_graphs} graphs: {errors}")

    lines = table(rows)
    worst = max(abs(row["error_pct"][k]) for row in rows for k in COMPARED)
    say("\n".join(lines))
    say(f"largest |error| {worst:.1f}%; total {time.perf_counter() - started:.0f} s")
    payload = {
        "device": args.device, "gpu": profile.description["gpu"], "torch": profile.description["torch"], "model": config.describe(),
        "instance": name, "n_requests": n_requests, "load": args.load, "rate_rps": rate_rps, "profile": profile_path.name,
        "largest_error_pct": worst, "rows": rows,
    }
    atomic_write_text(args.out / "replay_llm.json", json.dumps(payload, indent=1) + "\n")
    atomic_write_text(args.out / "replay_llm.md", f"{name} on {profile.description['gpu']}, {config.describe()}\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
