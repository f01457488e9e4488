"""Run a policy network on many envs in lockstep, one batched forward pass per decision."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
import torch

from schedgym.agents.heap import keep_freed_heap_memory
from schedgym.envs import jobshop, llmrouting, memmap, socdag
from schedgym.envs.jobshop.blocking_env import BlockingJobShopEnv
from schedgym.envs.jobshop.improve import JobShopImproveEnv

#: The env settings every jobshop policy is trained and run with.
POLICY_ENV_OPTIONS = {"action_filter": "giffler-thompson", "skip_forced": True}
#: The env settings the blocking-shop policy is trained and run with.
BLOCKING_POLICY_ENV_OPTIONS = {"skip_forced": True}
#: Moves of an improvement policy's episode in :func:`run_rollouts` (its validation), from the FDD/MWKR schedule.
IMPROVE_VALIDATION_HORIZON = 500


def policy_envs(problem: str, instances: list, net: torch.nn.Module) -> list:
    """One env per instance, set up (and padded alike) the way ``problem``'s policies are trained."""
    if problem in ("jobshop", "jobshop-improve", "jobshop-blocking"):
        padding = {
            "max_jobs": max(inst.n_jobs for inst in instances),
            "max_ops": max(inst.n_ops for inst in instances),
            "max_machines": max(inst.n_machines for inst in instances),
        }
        if problem == "jobshop-improve":
            return [JobShopImproveEnv(inst, horizon=IMPROVE_VALIDATION_HORIZON, **padding) for inst in instances]
        if problem == "jobshop-blocking":
            return [BlockingJobShopEnv(inst, **padding, **BLOCKING_POLICY_ENV_OPTIONS) for inst in instances]
        return [jobshop.JobShopEnv(inst, **padding, **POLICY_ENV_OPTIONS) for inst in instances]
    if problem == "socdag":
        max_pes = max(inst.n_pes for inst in instances)
        return [socdag.SocDagEnv(inst, mode=net.mode, binding=net.binding, max_pes=max_pes) for inst in instances]
    if problem == "llmrouting":
        max_replicas = max(inst.n_replicas for inst in instances)
        return [llmrouting.LlmRoutingEnv(inst, max_replicas=max_replicas) for inst in instances]
    if problem == "memmap":
        max_buffers = max(inst.n_buffers for inst in instances)
        max_edges = max(1, max(sum(len(o) for o in inst.overlaps) for inst in instances))
        return [memmap.MemoryMappingEnv(inst, max_buffers=max_buffers, max_edges=max_edges) for inst in instances]
    raise ValueError(f"no policy envs for problem {problem!r}")


def policy_objective(problem: str, instance, solution) -> float:
    """The value a policy minimizes: the makespan (the job shops), the socdag objective (makespan or mean job duration),
    the mean end-to-end latency (llmrouting), the modelled runtime or packing peak (memmap)."""
    if problem in ("jobshop", "jobshop-improve", "jobshop-blocking"):
        return float(solution.makespan(instance))
    if problem == "llmrouting":
        return llmrouting.metrics(instance.workload, solution)["e2e_mean_s"]
    if problem == "memmap":
        return memmap.objective(instance, solution)
    return socdag.objective(instance, solution)


def stack_observations(observations: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """List of per-env observation dicts -> dict of batched tensors ``[B, ...]``."""
    return {key: torch.from_numpy(np.stack([obs[key] for obs in observations])) for key in observations[0]}


class Rollout(NamedTuple):
    """One episode: the problem's solution (None if the episode was abandoned) and the env actions taken, in order."""

    solution: Any
    actions: list[int]


def run_policy(
    net: torch.nn.Module,
    instances: list,
    *,
    greedy: list[bool] | bool = True,
    generator: torch.Generator | None = None,
    problem: str = "jobshop",
) -> list:
    """The solutions of :func:`run_rollouts` (same arguments, no prefixes), in the order of ``instances``."""
    return [rollout.solution for rollout in run_rollouts(net, instances, greedy=greedy, generator=generator, problem=problem)]


@torch.inference_mode()
def run_rollouts(
    net: torch.nn.Module,
    instances: list,
    *,
    greedy: list[bool] | bool = True,
    generator: torch.Generator | None = None,
    problem: str = "jobshop",
    prefixes: list[list[int]] | None = None,
    runner_up_at: list[set[int]] | None = None,
    follow: list | None = None,
    deadline: float | None = None,
) -> list[Rollout]:
    """Run one episode per entry of ``instances`` (repeat an instance to sample it several times), all envs in
    lockstep with one batched forward pass per decision.

    Args:
        net: maps a batched observation dict to ``(logits [B, A], values [B])``.
        greedy: per rollout (or for all): take the arg-max action, else sample from the masked softmax.
        generator: torch random generator for sampling (seed it for reproducible samples).
        prefixes: per rollout, env actions replayed before the policy takes over (e.g. the first decisions of an
            earlier rollout's ``actions``); they cost env steps only, no forward pass (none on memmap for the part a
            prefix shares with a shorter one of the same instance: that env is forked).
        runner_up_at: per rollout, the decisions (counted from the episode's start, after the prefix) at which a
            greedy rollout takes the allowed action the network ranks second instead of its best (where another is
            allowed).
        follow: per rollout, None or an earlier solution to keep after the rollout's last ``runner_up_at``
            decision: each later decision repeats that solution's where the env allows it
            (``env.follow_action(solution)``, memmap envs), with no forward pass, and is the network's elsewhere.
        deadline: a ``time.perf_counter()`` value; episodes still running then (or whose prefix is not replayed
            yet) are abandoned.
    Returns:
        the episodes, in the order of ``instances``; each one's ``actions`` start with its prefix. An abandoned
        episode's ``solution`` is None.
    """
    keep_freed_heap_memory()
    greedy_flags = [greedy] * len(instances) if isinstance(greedy, bool) else list(greedy)
    envs = policy_envs(problem, instances, net)
    observations = [env.reset(seed=0)[0] for env in envs]
    actions: list[list[int]] = [[] for _ in envs]
    solutions: list = [None] * len(envs)

    def in_time() -> bool:
        return deadline is None or time.perf_counter() < deadline

    def step(i: int, action: int) -> bool:
        """Take ``action`` in env ``i``; True while its episode goes on."""
        actions[i].append(action)
        observations[i], _, terminated, truncated, info = envs[i].step(action)
        if terminated or truncated:
            solutions[i] = info["solution"]
        return not (terminated or truncated)

    last_deviation = [max(runs, default=-1) for runs in runner_up_at] if runner_up_at is not None else [-1] * len(envs)

    def needs_network(i: int) -> bool:
        """Take the decisions of env ``i`` that repeat its ``follow`` solution; True while its episode goes on."""
        if follow is None or follow[i] is None:
            return True
        while len(actions[i]) > last_deviation[i] and (action := envs[i].follow_action(follow[i])) is not None:
            if not step(i, action):
                return False
        return True

    def replay(prefixes: list[list[int]]) -> list[int]:
        """Take every rollout's prefix; the rollouts still running after it. Shortest prefix first: an env that
        can ``fork`` (memmap) starts a longer prefix from a copy of the env of the same instance walked along a
        prefix of it."""
        can_fork, walker, running = hasattr(envs[0], "fork"), None, []
        for i in sorted(range(len(envs)), key=lambda i: len(prefixes[i])):
            prefix = [int(a) for a in prefixes[i]]
            shared = can_fork and walker is not None and instances[i] is instances[walker] and len(actions[walker]) > 0
            if shared and prefix[: len(actions[walker])] == actions[walker]:
                envs[i], observations[i], actions[i] = envs[walker].fork(), observations[walker], list(actions[walker])
            if all(in_time() and step(i, a) for a in prefix[len(actions[i]) :]):
                running.append(i)
                walker = i
        return sorted(running)

    active = [i for i in replay(prefixes or [[]] * len(envs)) if needs_network(i)]
    while active and in_time():
        logits, _ = net(stack_observations([observations[i] for i in active]))
        masks = torch.from_numpy(np.stack([envs[i].action_masks() for i in active]))
        logits = logits.masked_fill(~masks, float("-inf"))
        flags = torch.tensor([greedy_flags[i] for i in active])
        chosen = logits.argmax(dim=-1)
        if runner_up_at is not None and logits.shape[-1] > 1:
            top_two = logits.topk(2, dim=-1)
            deviate = torch.tensor([len(actions[i]) in runner_up_at[i] for i in active]) & torch.isfinite(top_two.values[:, 1])
            chosen = torch.where(deviate, top_two.indices[:, 1], chosen)
        if not flags.all():  # draw samples only when some rollout samples
            sampled = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
            chosen = torch.where(flags, chosen, sampled)
        active = [i for i, action in zip(active, chosen.tolist()) if step(i, action) and needs_network(i)]
    return [Rollout(solution, taken) for solution, taken in zip(solutions, actions)]
