"""Decision latency of the trained LLM router on a CPU: what an embedding router pays per arriving request.

    python benchmarks/router_latency.py [--suites azure-conv-high-4,azure-conv-high-8] [--threads 1]

One run, side by side on the same states: the shipped ``llmrouting-default`` policy routes each suite's trace, and
every decision is timed from the simulator state to the chosen replica (encoding included, the simulation between
arrivals excluded), as

* ``exported``: :class:`schedgym.agents.dispatcher.RouterDispatcher` on the TorchScript export (``schedgym export``);
* ``eager``: the same dispatcher on the eager PyTorch network, the one the env and the ``ppo`` solver run.

Both make the same decisions (checked here on every request). Prints and writes the median and p99 per decision.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from schedgym.agents.checkpoint import load_network
from schedgym.agents.dispatcher import RouterDispatcher
from schedgym.agents.export import export_policy
from schedgym.atomic import atomic_write_text
from schedgym.envs.llmrouting import resolve_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="azure-conv-high-4,azure-conv-high-8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "router_latency.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    eager = RouterDispatcher(load_network("llmrouting-default", "llmrouting")[0])
    with tempfile.TemporaryDirectory() as folder:
        exported = RouterDispatcher.load(export_policy("llmrouting-default", Path(folder) / "router.pt"))
    rows = []
    for suite in args.suites.split(","):
        instance = resolve_suite(suite)[0]
        sim = instance.simulator()
        times_s = {"exported": [], "eager": []}
        for request in range(instance.workload.n_requests):
            sim.advance_to(float(instance.workload.arrival_s[request]))
            started = time.perf_counter()
            replica = exported.choose(sim, request)
            times_s["exported"].append(time.perf_counter() - started)
            started = time.perf_counter()
            eager_replica = eager.choose(sim, request)
            times_s["eager"].append(time.perf_counter() - started)
            if eager_replica != replica:
                raise SystemExit(f"{suite} request {request}: the export chose replica {replica}, the eager network {eager_replica}")
            sim.route(request, replica)
        for name, values in times_s.items():
            ms = 1e3 * np.array(values)
            rows.append({"suite": suite, "replicas": instance.n_replicas, "network": name, "decisions": len(ms),
                         "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())})
            print(f"{suite}  {name:8s}  median {rows[-1]['median_ms']:.3f} ms  p99 {rows[-1]['p99_ms']:.3f} ms  ({len(ms)} decisions)", flush=True)
    result = {"machine": platform.platform(), "torch": torch.__version__, "threads": args.threads, "rows": rows}
    atomic_write_text(args.out, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
