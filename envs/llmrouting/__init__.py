"""The llmrouting problem: LLM requests routed across continuously batching replicas - workloads, latency profile,
serving simulator, routing log + validator, suites."""

from schedgym.envs.llmrouting.profile import LatencyProfile
from schedgym.envs.llmrouting.workload import Workload, load_azure_csv, load_mooncake_jsonl, load_sharegpt_lengths
from schedgym.envs.llmrouting.simulator import LINKS, MigrationLink, ReplicaSpec, ServingSimulator
from schedgym.envs.llmrouting.solution import RoutingSolution, metrics, validate
from schedgym.envs.llmrouting.instance import RoutingInstance, measured_capacity_rps
from schedgym.envs.llmrouting.suites import SUITES, RoutingGenerator, generated_instance, make_instance, resolve_suite


def __getattr__(name: str):
    """``LlmRoutingEnv`` and ``LlmRoutingBatch`` load on first use: their encoder (:mod:`schedgym.graphs.llmrouting`)
    reads the state layout of :mod:`schedgym.envs.llmrouting.kernels`, so importing them here would make the two
    packages import each other."""
    if name == "LlmRoutingEnv":
        from schedgym.envs.llmrouting.env import LlmRoutingEnv

        return LlmRoutingEnv
    if name == "LlmRoutingBatch":
        from schedgym.envs.llmrouting.batched import LlmRoutingBatch

        return LlmRoutingBatch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "LINKS", "LatencyProfile", "LlmRoutingBatch", "MigrationLink", "LlmRoutingEnv", "ReplicaSpec", "RoutingGenerator", "RoutingInstance", "RoutingSolution", "SUITES", "ServingSimulator", "Workload",
    "generated_instance", "load_azure_csv", "load_mooncake_jsonl", "load_sharegpt_lengths", "make_instance", "measured_capacity_rps",
    "metrics", "resolve_suite", "validate",
]
