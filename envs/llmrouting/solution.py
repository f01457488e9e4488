"""The routing log (replica per request and the times each request was served), its validator and its metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from schedgym.envs.llmrouting.workload import Workload

#: Default service-level objectives: time to first token and time per output token.
TTFT_SLO_S, TPOT_SLO_S = 2.0, 0.05


@dataclass
class RoutingSolution:
    """What a router produced on a workload.

    Attributes:
        replica: int ``[n]``, the replica each request was sent to.
        first_token_s: float ``[n]``, when its first output token was produced.
        finish_s: float ``[n]``, when its last output token was produced.
        n_replicas: replicas in the run.
        min_decode_s: the shortest possible decode iteration of the run's replicas (profile at batch 1 / speed),
            which bounds how fast the output tokens after the first can come.
    """

    replica: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    n_replicas: int
    min_decode_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "replica": self.replica.tolist(), "first_token_s": self.first_token_s.tolist(), "finish_s": self.finish_s.tolist(),
            "n_replicas": self.n_replicas, "min_decode_s": self.min_decode_s,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RoutingSolution":
        return cls(
            np.asarray(data["replica"], dtype=np.int64), np.asarray(data["first_token_s"], dtype=float),
            np.asarray(data["finish_s"], dtype=float), int(data["n_replicas"]), float(data.get("min_decode_s", 0.0)),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def validate(workload: Workload, solution: RoutingSolution) -> list[str]:
    """Every violated constraint in words (empty: consistent): one replica per request in range; the first token
    after the arrival; the last token after the first, at least (output - 1) minimal decode iterations later."""
    n = workload.n_requests
    arrays = (solution.replica, solution.first_token_s, solution.finish_s)
    if any(np.shape(a) != (n,) for a in arrays):
        return [f"expected replica, first_token_s and finish_s for {n} requests, got shapes {[np.shape(a) for a in arrays]}"]
    violations = []
    for r in range(n):
        if not 0 <= solution.replica[r] < solution.n_replicas:
            violations.append(f"request {r}: replica {solution.replica[r]} does not exist (0..{solution.n_replicas - 1})")
        first, finish = solution.first_token_s[r], solution.finish_s[r]
        if not (np.isfinite(first) and np.isfinite(finish)):
            violations.append(f"request {r}: never served (first token {first}, finish {finish})")
            continue
        if first <= workload.arrival_s[r]:
            violations.append(f"request {r}: first token at {first:.6f} s, not after its arrival at {workload.arrival_s[r]:.6f} s")
        least = (workload.output_tokens[r] - 1) * solution.min_decode_s
        if finish < first + least - 1e-9:
            violations.append(f"request {r}: {workload.output_tokens[r]} tokens by {finish:.6f} s, faster than {least:.6f} s of decoding after the first")
    return violations


def metrics(workload: Workload, solution: RoutingSolution, ttft_slo_s: float = TTFT_SLO_S, tpot_slo_s: float = TPOT_SLO_S) -> dict[str, float]:
    """Latency metrics (seconds): TTFT, time per output token (requests with more than one token), end-to-end
    latency, SLO attainment (both TTFT and TPOT within their thresholds), throughput and goodput (requests/s: all
    of them, and those within both SLOs, over the span from the first arrival to the last finish)."""
    ttft = solution.first_token_s - workload.arrival_s
    e2e = solution.finish_s - workload.arrival_s
    many = workload.output_tokens > 1
    tpot = np.where(many, (solution.finish_s - solution.first_token_s) / np.maximum(workload.output_tokens - 1, 1), 0.0)
    span = float(solution.finish_s.max() - workload.arrival_s[0])
    within_slo = (ttft <= ttft_slo_s) & (tpot <= tpot_slo_s)
    result = {
        "ttft_mean_s": float(ttft.mean()), "ttft_p50_s": float(np.percentile(ttft, 50)), "ttft_p90_s": float(np.percentile(ttft, 90)),
        "ttft_p99_s": float(np.percentile(ttft, 99)),
        "tpot_mean_s": float(tpot[many].mean()) if many.any() else 0.0,
        "e2e_mean_s": float(e2e.mean()), "e2e_p50_s": float(np.percentile(e2e, 50)), "e2e_p90_s": float(np.percentile(e2e, 90)),
        "e2e_p99_s": float(np.percentile(e2e, 99)),
        "slo_attainment": float(np.mean(within_slo)),
        "throughput_rps": workload.n_requests / span if span > 0 else float("nan"),
        "goodput_rps": float(within_slo.sum()) / span if span > 0 else float("nan"),
    }
    return result
