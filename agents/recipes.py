"""What training a policy draws on, per problem: the settings of the shipped policy's recipe, the training env, the
fixed validation set, the rules the validation compares with, and the teacher of the warm start.

:mod:`schedgym.agents.train` runs the same loop for every problem and looks all of these up in :data:`RECIPES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from schedgym.agents.imitation import (
    Demonstrations,
    collect_demonstrations,
    collect_placement_demonstrations,
    collect_router_demonstrations,
    collect_rule_demonstrations,
)
from schedgym.agents.gnn import GnnConfig
from schedgym.agents.rollout import BLOCKING_POLICY_ENV_OPTIONS, POLICY_ENV_OPTIONS
from schedgym.baselines.jobshop import RULE_SCORES, DispatchingRule
from schedgym.baselines.jobshop.blocking import BlockingRule
from schedgym.baselines.llmrouting import Router
from schedgym.baselines.memmap import GreedyPlacer
from schedgym.baselines.socdag import OnlineRule, StaticListScheduler
from schedgym.envs.jobshop import JobShopEnv, TaillardGenerator, generate_taillard, parse_sizes
from schedgym.envs.jobshop.batched import JobShopBatch
from schedgym.envs.jobshop.blocking import suite_instance
from schedgym.envs.jobshop.blocking_env import BlockingJobShopBatch, BlockingJobShopEnv
from schedgym.envs.jobshop.improve import JobShopImproveBatch, JobShopImproveEnv
from schedgym.envs.llmrouting import LlmRoutingEnv, RoutingGenerator, generated_instance
from schedgym.envs.llmrouting.batched import LlmRoutingBatch
from schedgym.envs.memmap import MemoryMappingEnv
from schedgym.envs.memmap.batched import MemMapBatch
from schedgym.envs.memmap.tracer import TraceGenerator
from schedgym.envs.socdag import SocDagEnv, StreamGenerator, stream_instance
from schedgym.envs.socdag.batched import SocDagBatch

if TYPE_CHECKING:
    from torch import nn

    from schedgym.agents.train import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """The problem-specific parts of training.

    Attributes:
        settings: the ``TrainConfig`` fields of the shipped policy's recipe that differ from the defaults.
        make_env: config -> one training env (drawing a fresh generated instance per episode).
        make_batched_env: config -> the batched engine of ``config.n_envs`` training slots (the batched trainer's
            env, same options as ``make_env``).
        validation_instances: config -> the fixed validation set (generated from ``config.val_seed``).
        reference_rules: the deterministic rules whose best objective per validation instance is the reference.
        demonstrations: (config, backend) -> the warm start's teacher decisions.
        student_demonstrations: (config, network, round) -> the teacher's labels of the states the network reaches
            on fresh episodes (one DAgger round); None where the teacher cannot label any state.
    """

    settings: dict[str, Any]
    make_env: Callable[["TrainConfig"], gym.Env]
    make_batched_env: Callable[["TrainConfig"], Any]
    validation_instances: Callable[["TrainConfig"], list]
    reference_rules: Callable[[], list]
    demonstrations: Callable[["TrainConfig", str], Demonstrations]
    student_demonstrations: Callable[["TrainConfig", "nn.Module", int], Demonstrations] | None = None


def parse_range(text: str) -> tuple[float, float]:
    """``"40,90"`` -> ``(40.0, 90.0)``."""
    low, high = (float(v) for v in text.split(","))
    return low, high


def _stream_generator(config: TrainConfig) -> StreamGenerator:
    return StreamGenerator(parse_range(config.stream_rate_per_ms), parse_range(config.stream_noise), config.stream_jobs)


def _jobshop_validation(config: TrainConfig) -> list:
    rng = np.random.default_rng(config.val_seed)
    return [
        generate_taillard(jobs, machines, rng, name=f"val-{jobs}x{machines}-{k}")
        for jobs, machines in parse_sizes(config.val_sizes)
        for k in range(config.val_instances_per_size)
    ]


def _socdag_validation(config: TrainConfig) -> list:
    """60-job streams with noise 0.2 at the two ends of the training rate range."""
    return [
        stream_instance(rate, 60, 0.2, config.val_seed + k, name=f"val-rate{rate:g}-{k}")
        for rate in parse_range(config.stream_rate_per_ms)
        for k in range(config.val_instances_per_size)
    ]


def _routing_clusters(config: TrainConfig) -> tuple[str, ...]:
    return tuple(config.routing_clusters.split(","))


def _routing_generator(config: TrainConfig) -> RoutingGenerator:
    return RoutingGenerator(prompt_scales=tuple(int(scale) for scale in config.routing_prompt_scales.split(",")), clusters=_routing_clusters(config))


def _llmrouting_validation(config: TrainConfig) -> list:
    """Workloads at 0.9 load on 4 replicas, with short and 4x prompts in turn, on each training cluster in turn."""
    clusters = _routing_clusters(config)
    return [generated_instance(config.val_seed + k, load=0.9, n_replicas=4, prompt_scale=(1, 4)[k % 2], cluster=clusters[k % len(clusters)])
            for k in range(config.val_instances_per_size)]


def _trace_generator(config: TrainConfig) -> TraceGenerator:
    return TraceGenerator(families=tuple(config.trace_families.split(",")))


def _memmap_validation(config: TrainConfig) -> list:
    """Traces of the training families only: the held-out families are never looked at during training."""
    rng = np.random.default_rng(config.val_seed)
    generator = _trace_generator(config)
    return [generator(rng) for _ in range(config.val_instances_per_size)]


def _taillard_generator(config: TrainConfig) -> TaillardGenerator:
    return TaillardGenerator(parse_sizes(config.sizes))


def _jobshop_env(config: TrainConfig) -> gym.Env:
    return JobShopEnv(_taillard_generator(config), normalize_reward=True, **POLICY_ENV_OPTIONS)


def _jobshop_batch(config: TrainConfig) -> JobShopBatch:
    return JobShopBatch(_taillard_generator(config), config.n_envs, normalize_reward=True, seed=config.seed, **POLICY_ENV_OPTIONS)


def _shutdown_rates(config: TrainConfig) -> tuple[float, ...]:
    return tuple(float(rate) for rate in config.blocking_shutdown_rates.split(","))


def _blocking_validation(config: TrainConfig) -> list:
    """The job-shop validation instances as blocking shops, the shutdown rates taken in turn."""
    rates = _shutdown_rates(config)
    return [suite_instance(instance, rates[k % len(rates)]) for k, instance in enumerate(_jobshop_validation(config))]


def _blocking_options(config: TrainConfig) -> dict:
    return {"shutdown_rate": _shutdown_rates(config), "normalize_reward": True, **BLOCKING_POLICY_ENV_OPTIONS}


def _improve_options(config: TrainConfig) -> dict:
    return {"horizon": config.improve_horizon, "start": tuple(config.improve_starts.split(",")), "normalize_reward": True}


def _no_demonstrations(config: TrainConfig, backend: str) -> Demonstrations:
    raise ValueError(f"the {config.problem} policy learns by PPO alone (from --init weights or from scratch): set bc_instances to 0")


RECIPES: dict[str, Recipe] = {
    # Behaviour cloning of CP-SAT schedules of generated instances, then PPO at a small learning rate.
    "jobshop": Recipe(
        settings={},
        make_env=_jobshop_env,
        make_batched_env=_jobshop_batch,
        validation_instances=_jobshop_validation,
        reference_rules=lambda: [DispatchingRule(name) for name in RULE_SCORES if name != "random"],
        demonstrations=lambda config, backend: collect_demonstrations(
            parse_sizes(config.bc_sizes), config.bc_instances, config.bc_time_limit_s, config.bc_seed, backend
        ),
    ),
    # PPO alone (no teacher) on generated instances, episodes of improve_horizon moves from several rules' schedules.
    "jobshop-improve": Recipe(
        settings=dict(
            sizes="10x10,15x10", trainer="batched", bc_instances=0, total_steps=1_000_000, n_envs=32, n_steps=32,
            batch_size=256, n_epochs=1, learning_rate=1e-4, gamma=0.99, eval_every_steps=100_000, val_sizes="15x15",
            val_instances_per_size=4, gnn=GnnConfig(n_layers=2),
        ),
        make_env=lambda config: JobShopImproveEnv(_taillard_generator(config), **_improve_options(config)),
        make_batched_env=lambda config: JobShopImproveBatch(_taillard_generator(config), config.n_envs, seed=config.seed, **_improve_options(config)),
        validation_instances=_jobshop_validation,
        reference_rules=lambda: [DispatchingRule(name) for name in RULE_SCORES if name != "random"],
        demonstrations=_no_demonstrations,
    ),
    # PPO alone on generated blocking shops (shutdown rates drawn per episode), from the job-shop policy's weights.
    "jobshop-blocking": Recipe(
        settings=dict(
            sizes="10x10,15x10,15x15", trainer="batched", bc_instances=0, total_steps=1_200_000, n_envs=32, n_steps=64,
            batch_size=512, n_epochs=2, learning_rate=5e-5, eval_every_steps=50_000, val_sizes="15x15", val_instances_per_size=9,
        ),
        make_env=lambda config: BlockingJobShopEnv(_taillard_generator(config), **_blocking_options(config)),
        make_batched_env=lambda config: BlockingJobShopBatch(_taillard_generator(config), config.n_envs, seed=config.seed, **_blocking_options(config)),
        validation_instances=_blocking_validation,
        reference_rules=lambda: [BlockingRule(name) for name in RULE_SCORES if name != "random"],
        demonstrations=_no_demonstrations,
    ),
    # Cloning the late-binding srpt rule on generated streams (pair mode), three rounds of DAgger, then PPO.
    "socdag": Recipe(
        settings=dict(
            mode="pair", binding="late", socdag_teacher="srpt", total_steps=10_000, learning_rate=3e-5,
            eval_every_steps=5_000, val_instances_per_size=6, bc_instances=24, bc_epochs=8, dagger_rounds=3,
        ),
        make_env=lambda config: SocDagEnv(_stream_generator(config), mode=config.mode, binding=config.binding),
        make_batched_env=lambda config: SocDagBatch(_stream_generator(config), config.n_envs, mode=config.mode, binding=config.binding, seed=config.seed),
        validation_instances=_socdag_validation,
        reference_rules=lambda: [StaticListScheduler("heft"), OnlineRule("heft-online"), OnlineRule("eft"), OnlineRule("srpt")],
        demonstrations=lambda config, backend: collect_rule_demonstrations(
            _stream_generator(config), config.bc_instances, config.bc_seed, config.socdag_teacher, config.binding
        ),
        student_demonstrations=lambda config, net, round_index: collect_rule_demonstrations(
            _stream_generator(config), config.bc_instances, config.bc_seed + 1000 * (round_index + 1), config.socdag_teacher, config.binding, net,
            config.dagger_parallel,
        ),
    ),
    # Cloning JSQ by pending tokens on generated workloads, then PPO with a discounted return.
    "llmrouting": Recipe(
        settings=dict(total_steps=100_000, learning_rate=3e-5, gamma=0.99, n_steps=256, eval_every_steps=10_000, val_instances_per_size=4, bc_instances=32, bc_epochs=10),
        make_env=lambda config: LlmRoutingEnv(_routing_generator(config)),
        make_batched_env=lambda config: LlmRoutingBatch(_routing_generator(config), config.n_envs, seed=config.seed),
        validation_instances=_llmrouting_validation,
        reference_rules=lambda: [Router(name) for name in ("least-outstanding", "jsq-tokens", "llumnix", "prefix-aware")],
        demonstrations=lambda config, backend: collect_router_demonstrations(_routing_generator(config), config.bc_instances, config.bc_seed),
    ),
    # Cloning CP-SAT's maps of traces of generated models of the training families, three rounds of DAgger, then PPO.
    "memmap": Recipe(
        settings=dict(
            total_steps=30_000, learning_rate=3e-5, eval_every_steps=5_000, val_instances_per_size=12,
            bc_instances=240, bc_time_limit_s=1.0, bc_epochs=10, dagger_rounds=3,
        ),
        make_env=lambda config: MemoryMappingEnv(_trace_generator(config)),
        make_batched_env=lambda config: MemMapBatch(_trace_generator(config), config.n_envs, seed=config.seed),
        validation_instances=_memmap_validation,
        reference_rules=lambda: [GreedyPlacer(name) for name in ("greedy-size", "msa", "first-fit")],
        demonstrations=lambda config, backend: collect_placement_demonstrations(
            _trace_generator(config), config.bc_instances, config.bc_seed, config.bc_time_limit_s
        ),
        student_demonstrations=lambda config, net, round_index: collect_placement_demonstrations(
            _trace_generator(config), config.bc_instances, config.bc_seed + 1000 * (round_index + 1), config.bc_time_limit_s, net,
            config.dagger_parallel,
        ),
    ),
}
