"""The llmrouting problem: LLM requests routed across continuously batching replicas - workloads, latency profile,
serving simulator, routing log + validator, suites."""

from schedgym.envs.llmrouting.profile import LatencyProfile
from schedgym.envs.llmrouting.workload import Workload, load_azure_csv, load_mooncake_jsonl, load_sharegpt_lengths
from schedgym.envs.llmrouting.simulator import ReplicaSpec, ServingSimulator
from schedgym.envs.llmrouting.solution import RoutingSolution, metrics, validate
from schedgym.envs.llmrouting.instance import RoutingInstance, measured_capacity_rps
from schedgym.envs.llmrouting.suites import SUITES, RoutingGenerator, generated_instance, make_instance, resolve_suite
from schedgym.envs.llmrouting.env import LlmRoutingEnv

__all__ = [
    "LatencyProfile", "LlmRoutingEnv", "ReplicaSpec", "RoutingGenerator", "RoutingInstance", "RoutingSolution", "SUITES", "ServingSimulator", "Workload",
    "generated_instance", "load_azure_csv", "load_mooncake_jsonl", "load_sharegpt_lengths", "make_instance", "measured_capacity_rps",
    "metrics", "resolve_suite", "validate",
]
