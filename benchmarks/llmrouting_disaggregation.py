"""Disaggregated against colocated serving: goodput of every prefill/decode split of 4 Llama-3-8B H100 GPUs, and
the split DistServe's placement search picks, at several loads and two TPOT SLOs.

    python benchmarks/llmrouting_disaggregation.py [--workloads sharegpt-poisson mooncake-conv azure-conv]

Each row serves one workload (block 0 of its trace, as the suites) at ``load`` x the colocated capacity of the
4 GPUs (:func:`~schedgym.envs.llmrouting.instance.measured_capacity_rps`), arrivals routed by ``jsq-tokens``
(among the prefill replicas when disaggregated), KV caches handed over NVLink. Goodput: requests/s within TTFT
<= 2 s and TPOT <= the SLO. Results go to ``results/llmrouting_disaggregation.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from schedgym.atomic import atomic_write_text
from schedgym.baselines.llmrouting.placement import distserve_placement, placements
from schedgym.envs.llmrouting.suites import base_workload

LOADS = (0.3, 0.5, 0.7, 0.9)
TPOT_SLOS_S = (0.05, 0.02)
N_GPUS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="*", default=["sharegpt-poisson", "mooncake-conv", "azure-conv"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llmrouting_disaggregation")
    args = parser.parse_args()
    rows = []
    header = "| workload | load | TPOT SLO (ms) | colocated goodput (req/s) | " + " | ".join(f"{p}P:{N_GPUS - p}D" for p in range(1, N_GPUS)) + " | DistServe pick | pick / colocated |"
    lines = [header, "|" + "---|" * (6 + N_GPUS - 1)]
    for name in args.workloads:
        for load in LOADS:
            for tpot_slo_s in TPOT_SLOS_S:
                results = placements(base_workload(name), N_GPUS, load, tpot_slo_s=tpot_slo_s)
                pick = distserve_placement(results)
                colocated = results[0].metrics["goodput_rps"]
                rows.append({"workload": name, "load": load, "tpot_slo_s": tpot_slo_s, "pick": pick.n_prefill,
                             "configs": [{"n_prefill": p.n_prefill, **p.metrics} for p in results]})
                cells = " | ".join(f"{p.metrics['goodput_rps']:.2f} (TTFT p99 {p.metrics['ttft_p99_s']:.2f} s, TPOT {1000 * p.metrics['tpot_mean_s']:.1f} ms)" for p in results[1:])
                lines.append(f"| {name} | {load:g} | {1000 * tpot_slo_s:g} | {colocated:.2f} (TTFT p99 {results[0].metrics['ttft_p99_s']:.2f} s, "
                             f"TPOT {1000 * results[0].metrics['tpot_mean_s']:.1f} ms) | {cells} | {pick.n_prefill}P:{N_GPUS - pick.n_prefill}D | "
                             f"{pick.metrics['goodput_rps'] / colocated if colocated else float('inf'):.2f} |")
                print(lines[-1], flush=True)
    print("\n".join(lines))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"machine": platform.platform(), "rows": rows}, indent=1))
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
