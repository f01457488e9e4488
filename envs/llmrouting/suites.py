"""Named llmrouting suites.

* ``<workload>-<moderate|high>-<4|8>``: ``azure-conv`` (the first 2,000 requests of the Azure 2023 conversation
  trace), ``mooncake-conv`` (the first 1,000 of the Mooncake conversation trace, with shared-prefix ids) or
  ``sharegpt-poisson`` (2,000 ShareGPT lengths, Poisson arrivals, seed 0) on replicas of the measured H100
  Llama-1B profile (8,192 KV blocks of 16 tokens: the cache rarely fills).
* ``<workload>-kv-<moderate|high>-<4|8>``: the same workloads on Llama-3-8B replicas on A100 40 GB GPUs
  (derived profile, 10,250 KV blocks: memory binds, round-robin preempts).
* ``mixed-hetero-<moderate|high>-<4|8>``: the three workloads side by side (1,000 Azure, 500 Mooncake, 500
  ShareGPT requests, :func:`merge_workloads`) on a heterogeneous cluster, half Llama-3-8B on H100 80 GB (28,682
  blocks), half on A100 40 GB.
* ``<workload>-pd-<moderate|high>-<4|8>``: disaggregated serving (DistServe) on Llama-3-8B H100 80 GB replicas,
  the first half prefill-only and the second half decode-only, KV caches handed over NVLink; the rate is the
  load times the capacity of the same GPUs serving colocated (every replica mixed), so the two compare at one rate.

Arrival times are rescaled so the rate is 0.6 (moderate) or 0.9 (high) of the replicas' measured capacity
(:func:`measured_capacity_rps`). Every replica: a 2,048-token iteration budget, at most 256 running requests,
prefix caching on. A trace file (Azure CSV or Mooncake JSONL) runs at load 0.9 on 4 default replicas.
"""

from __future__ import annotations

import dataclasses
import os
from functools import lru_cache

import numpy as np

from schedgym.envs.llmrouting.instance import RoutingInstance, measured_capacity_rps
from schedgym.envs.llmrouting.length_predictor import default_predictor
from schedgym.envs.llmrouting.profile import LatencyProfile
from schedgym.envs.llmrouting.simulator import LINKS, ReplicaSpec
from schedgym.envs.llmrouting.workload import (
    MOONCAKE_BLOCK_TOKENS,
    Workload,
    load_azure_csv,
    load_mooncake_jsonl,
    load_sharegpt_lengths,
    merge_workloads,
)

LOADS = {"moderate": 0.6, "high": 0.9}
REPLICA_COUNTS = (4, 8)
WORKLOADS = ("azure-conv", "mooncake-conv", "sharegpt-poisson")
#: Serving clusters: name -> the profile of each replica, cycled over the replicas ("": the default one).
CLUSTERS: dict[str, tuple[str, ...]] = {
    "": ("profile_h100_llama1b.json",),
    "kv": ("profile_a100-40gb_llama8b.json",),
    "hetero": ("profile_h100_llama8b.json", "profile_a100-40gb_llama8b.json"),
    "h100-8b": ("profile_h100_llama8b.json",),
    "pd": ("profile_h100_llama8b.json",),
}
#: Suite name -> (workload, cluster, load level, replicas).
SUITE_PARTS: dict[str, tuple[str, str, str, int]] = {
    **{f"{w}-{level}-{n}": (w, "", level, n) for w in WORKLOADS for level in LOADS for n in REPLICA_COUNTS},
    **{f"{w}-kv-{level}-{n}": (w, "kv", level, n) for w in WORKLOADS for level in LOADS for n in REPLICA_COUNTS},
    **{f"mixed-hetero-{level}-{n}": ("mixed", "hetero", level, n) for level in LOADS for n in REPLICA_COUNTS},
    **{f"{w}-pd-{level}-{n}": (w, "pd", level, n) for w in WORKLOADS for level in LOADS for n in REPLICA_COUNTS},
}
_CLUSTER_WORDS = {"": "H100 Llama-1B replicas", "kv": "A100-40GB Llama-3-8B replicas (KV-bound)",
                  "hetero": "replicas, half H100-80GB and half A100-40GB Llama-3-8B",
                  "pd": "H100-80GB Llama-3-8B GPUs colocated, served disaggregated (half prefill, half decode replicas)"}
SUITES: dict[str, str] = {
    name: f"{w} at {LOADS[level]:.0%} of the measured capacity of {n} {_CLUSTER_WORDS[cluster]}"
    for name, (w, cluster, level, n) in SUITE_PARTS.items()
}


@lru_cache(maxsize=1)
def shipped_profile() -> LatencyProfile:
    return LatencyProfile.load()


@lru_cache(maxsize=8)
def _profile(name: str) -> LatencyProfile:
    return LatencyProfile.load(name)


def cluster_replicas(cluster: str, n_replicas: int, n_prefill: int | None = None) -> tuple[ReplicaSpec, ...]:
    """The specs of ``n_replicas`` replicas of a named cluster (see :data:`CLUSTERS`); a replica of a derived or
    measured profile that records ``kv_blocks`` gets that many blocks. The ``pd`` cluster's first ``n_prefill``
    replicas (default half) are prefill replicas, the rest decode replicas."""
    if cluster == "":
        return (ReplicaSpec(),) * n_replicas
    profiles = [_profile(name) for name in CLUSTERS[cluster]]
    replicas = tuple(ReplicaSpec(kv_blocks=p.kv_blocks, profile=p) for p in (profiles[r % len(profiles)] for r in range(n_replicas)))
    if cluster != "pd":
        return replicas
    n_prefill = n_replicas // 2 if n_prefill is None else n_prefill
    if not 1 <= n_prefill < n_replicas:
        raise ValueError(f"a disaggregated cluster of {n_replicas} replicas needs 1..{n_replicas - 1} prefill replicas, got {n_prefill}")
    return tuple(dataclasses.replace(spec, role="prefill" if r < n_prefill else "decode") for r, spec in enumerate(replicas))


@lru_cache(maxsize=8)
def base_workload(name: str, window: int = 0) -> Workload:
    """The requests of a named workload, at their original arrival times. The suites use window 0: the first 2,000
    Azure or 1,000 Mooncake requests, or ShareGPT arrivals drawn with seed 0, and for ``mixed`` 1,000 / 500 /
    500 of them; window ``k`` takes the ``k``-th such block of the trace (ShareGPT: seed ``k``)."""
    if name == "azure-conv":
        return load_azure_csv().window(2000 * window, 2000)
    if name == "mooncake-conv":
        return load_mooncake_jsonl().window(1000 * window, 1000)
    if name == "sharegpt-poisson":
        return load_sharegpt_lengths(2000, rate_rps=1.0, seed=window)
    if name == "mixed":
        parts = [load_azure_csv().window(1000 * window, 1000), load_mooncake_jsonl().window(500 * window, 500),
                 load_sharegpt_lengths(500, rate_rps=1.0, seed=window)]
        predictor = default_predictor()
        return merge_workloads([predictor.annotate(part) for part in parts], "mixed")
    raise KeyError(f"unknown workload {name!r}; choose one of {', '.join(WORKLOADS + ('mixed',))}")


def make_instance(workload: Workload, load: float, n_replicas: int, name: str, spec: ReplicaSpec | None = None,
                  cluster: str = "", n_prefill: int | None = None) -> RoutingInstance:
    """``workload`` rescaled to ``load`` x the measured capacity of ``n_replicas`` replicas of ``spec`` (or of the
    named ``cluster``; a disaggregated one at the capacity of its GPUs colocated, its KV caches handed over
    NVLink)."""
    replicas = (spec,) * n_replicas if spec is not None else cluster_replicas(cluster, n_replicas, n_prefill)
    profile = replicas[0].profile_or(shipped_profile())
    colocated = tuple(dataclasses.replace(r, role="mixed") for r in replicas)
    rate = load * measured_capacity_rps(workload, colocated, profile)
    link = LINKS["nvlink"] if colocated != replicas else RoutingInstance.link
    return RoutingInstance(name, workload.at_rate(rate, name=name, group=name), replicas, profile, group=name, link=link)


def resolve_suite(spec: str, load: float = 0.9, n_replicas: int = 4) -> list[RoutingInstance]:
    """The one instance a suite name gives, or a trace file (``.csv``: Azure, ``.jsonl``: Mooncake) at ``load`` of
    the measured capacity of ``n_replicas`` replicas (``load`` and ``n_replicas`` apply to files only)."""
    if spec in SUITE_PARTS:
        workload, cluster, level, n = SUITE_PARTS[spec]
        return [make_instance(base_workload(workload), LOADS[level], n, spec, cluster=cluster)]
    if os.path.exists(spec):
        workload = load_mooncake_jsonl(spec) if spec.endswith(".jsonl") else load_azure_csv(spec)
        return [make_instance(workload, load, n_replicas, f"{workload.name}-{load:g}-{n_replicas}")]
    raise KeyError(f"unknown llmrouting suite {spec!r}; choose one of {', '.join(SUITES)} or an Azure .csv / Mooncake .jsonl trace")


def generated_instance(seed: int, *, n_requests: int = 300, load: float = 0.9, n_replicas: int = 4, prompt_scale: int = 1,
                       cluster: str = "") -> RoutingInstance:
    """A generated workload for training and validation (never a benchmark trace): ShareGPT lengths, gamma
    arrivals with a coefficient of variation drawn from [1, 3], and conversation sessions sharing prefixes (each
    request joins one of ``n_requests // 8`` sessions, Zipf-like popularity; a prompt's leading 512-token blocks are
    its session's), at ``load`` x the measured capacity of ``n_replicas`` replicas on the seed-0 mix (measured
    once per cluster, replica count and prompt scale, so drawing an instance costs no simulation). ``prompt_scale``
    multiplies every prompt length (long-context workloads); ``cluster`` names the replicas (:data:`CLUSTERS`,
    e.g. ``kv``: Llama-3-8B on A100 40 GB, where memory binds)."""
    rng = np.random.default_rng(seed)
    replicas = cluster_replicas(cluster, n_replicas)
    base = _scaled(load_sharegpt_lengths(n_requests, rate_rps=1.0, seed=seed, arrivals="gamma", cv=float(rng.uniform(1.0, 3.0))), prompt_scale, replicas)
    n_sessions = max(1, n_requests // 8)
    popularity = 1.0 / np.arange(1, n_sessions + 1)
    sessions = rng.choice(n_sessions, size=n_requests, p=popularity / popularity.sum())
    prefixes = tuple(
        tuple(int(s) * 1000 + k for k in range(int(p) // MOONCAKE_BLOCK_TOKENS)) for s, p in zip(sessions, base.prompt_tokens)
    )
    workload = dataclasses.replace(base, prefix_ids=prefixes, name=f"generated-{seed}")
    rate = load * _generated_capacity_rps(n_replicas, n_requests, prompt_scale, cluster)
    name = f"generated-{seed}" + (f"-x{prompt_scale}" if prompt_scale != 1 else "") + (f"-{cluster}" if cluster else "")
    link = LINKS["nvlink"] if cluster == "pd" else RoutingInstance.link
    profile = replicas[0].profile_or(shipped_profile())
    return RoutingInstance(name, workload.at_rate(rate, name=name, group=name), replicas, profile, group=name, link=link)


def _scaled(workload: Workload, prompt_scale: int, replicas: tuple[ReplicaSpec, ...]) -> Workload:
    """``workload`` with every prompt ``prompt_scale`` times longer, cut so that any prompt with the longest
    output fits the smallest KV cache of ``replicas``."""
    if prompt_scale == 1:
        return workload
    room = min(spec.kv_blocks * spec.block_tokens for spec in replicas) - int(workload.output_tokens.max()) - 16
    return dataclasses.replace(workload, prompt_tokens=np.minimum(workload.prompt_tokens * prompt_scale, np.maximum(room, 1)))


@lru_cache(maxsize=64)
def _generated_capacity_rps(n_replicas: int, n_requests: int, prompt_scale: int = 1, cluster: str = "") -> float:
    colocated = tuple(dataclasses.replace(spec, role="mixed") for spec in cluster_replicas(cluster, n_replicas))
    reference = _scaled(load_sharegpt_lengths(n_requests, rate_rps=1.0, seed=0), prompt_scale, colocated)
    return measured_capacity_rps(reference, colocated, colocated[0].profile_or(shipped_profile()))


@dataclasses.dataclass(frozen=True)
class RoutingGenerator:
    """Draws training instances: :func:`generated_instance` at a load drawn from ``load``, a replica count
    drawn from ``replica_counts``, a prompt scale from ``prompt_scales`` and a cluster from ``clusters``."""

    load: tuple[float, float] = (0.75, 1.0)
    replica_counts: tuple[int, ...] = (2, 4, 6, 8)
    n_requests: int = 300
    prompt_scales: tuple[int, ...] = (1, 2, 4, 8)
    clusters: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        unknown = [c for c in self.clusters if c not in CLUSTERS]
        if unknown:
            raise ValueError(f"unknown clusters {unknown}; choose among {sorted(CLUSTERS)} ('' is the default Llama-1B H100 one)")

    def __call__(self, rng: np.random.Generator) -> RoutingInstance:
        seed, load, n_replicas, scale = (int(rng.integers(2**31)), float(rng.uniform(*self.load)), int(rng.choice(self.replica_counts)),
                                         int(rng.choice(self.prompt_scales)))
        cluster = self.clusters[int(rng.integers(len(self.clusters)))] if len(self.clusters) > 1 else self.clusters[0]
        return generated_instance(seed, n_requests=self.n_requests, load=load, n_replicas=n_replicas, prompt_scale=scale, cluster=cluster)
