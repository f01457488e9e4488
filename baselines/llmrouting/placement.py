"""DistServe-style placement: how many of a cluster's GPUs should prefill and how many decode.

DistServe (Zhong et al., OSDI 2024) chooses the split of prefill and decode instances that maximises goodput (the
request rate served within both the TTFT and the TPOT SLO), searching it with a simulator of the serving system.
Here the simulator is the library's: every split of ``n_gpus`` replicas into prefill and decode replicas is
served (arrivals by a routing heuristic, each request decoding on the least loaded decode replica at its first
token), and the one with the highest ``goodput_rps`` is kept, next to serving the same GPUs colocated.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedgym.baselines.llmrouting.routers import Router
from schedgym.envs.llmrouting.solution import TPOT_SLO_S, TTFT_SLO_S, metrics
from schedgym.envs.llmrouting.suites import make_instance
from schedgym.envs.llmrouting.workload import Workload


@dataclass(frozen=True)
class Placement:
    """One serving configuration's result: ``n_prefill`` prefill replicas (0: colocated, every replica mixed)
    and its metrics (:func:`~schedgym.envs.llmrouting.solution.metrics`)."""

    n_prefill: int
    metrics: dict


def placements(workload: Workload, n_gpus: int, load: float, *, router: str = "jsq-tokens", ttft_slo_s: float = TTFT_SLO_S,
               tpot_slo_s: float = TPOT_SLO_S) -> list[Placement]:
    """Every configuration of ``n_gpus`` Llama-3-8B H100 replicas serving ``workload`` at ``load`` x their
    colocated capacity: colocated first, then 1 .. n_gpus - 1 prefill replicas."""
    results = []
    for n_prefill in range(n_gpus):
        cluster = "h100-8b" if n_prefill == 0 else "pd"
        instance = make_instance(workload, load, n_gpus, f"{workload.name}-{n_prefill}p", cluster=cluster, n_prefill=n_prefill or None)
        solution = Router(router).solve(instance, seed=0)
        results.append(Placement(n_prefill, metrics(instance.workload, solution, ttft_slo_s, tpot_slo_s)))
    return results


def distserve_placement(results: list[Placement]) -> Placement:
    """The disaggregated configuration with the highest goodput (ties: fewer prefill replicas)."""
    return max((p for p in results if p.n_prefill > 0), key=lambda p: (p.metrics["goodput_rps"], -p.n_prefill))
