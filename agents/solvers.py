"""Trained policies as leaderboard solvers: ``ppo`` (greedy) and ``ppo-sample`` (greedy, then sampled rollouts, best
kept: around the best schedule so far, or whole, per problem)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from schedgym.agents.checkpoint import DEFAULT_POLICY, PolicyMetadata, load_network
from schedgym.agents.rollout import policy_objective, run_rollouts
from schedgym.agents.sampling import FOLLOW_INCUMBENT


@dataclass
class PpoSolver:
    """Schedules with a trained GNN policy.

    Attributes:
        problem: ``jobshop``, ``socdag``, ``llmrouting`` or ``memmap``.
        policy: a shipped policy name or a checkpoint path.
        samples: 0 for one greedy rollout; K > 0 adds rounds of K sampled rollouts, each round run as one batch
            (see :meth:`solve`); the best schedule wins.
        follow_incumbent: sampled rollouts replay a prefix of the best one so far (None: the problem's
            :data:`FOLLOW_INCUMBENT`); False samples whole rollouts.
        torch_threads: CPU threads for inference (one is fastest for graphs of a few thousand nodes, and leaves
            the other core to a second worker).
    """

    name: str = "ppo"
    problem: str = "jobshop"
    policy: str = ""
    samples: int = 0
    torch_threads: int = 1
    follow_incumbent: bool | None = None
    net: torch.nn.Module = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policy = self.policy or DEFAULT_POLICY[self.problem]
        self.net, self.metadata = load_network(self.policy, self.problem)
        if self.follow_incumbent is None:
            self.follow_incumbent = FOLLOW_INCUMBENT[self.problem]

    def solve(self, instance, *, time_limit: float | None = None, seed: int | None = None):
        """Greedy rollout; with ``samples`` > 0 also rounds of sampled rollouts.

        Following the incumbent, every sampled rollout replays the first decisions of the best rollout so far (a
        number drawn uniformly from half of its decisions up to all but the last) and samples the rest from the
        policy; otherwise every sampled rollout is whole. Each round is one batch of ``samples`` rollouts; the best
        one found replaces the incumbent. Sampling only the tail makes a rollout cheaper and keeps the search near
        the best schedule (``benchmarks/sampling_search.py`` compares it with whole sampled rollouts in the same
        time); where the first decisions matter most (memmap), whole rollouts do better.

        Without a time limit: one round. With one: rounds until the limit; the rollouts still running at the limit
        are abandoned, so the solver overruns it by about one batched decision or one replayed action (the greedy
        rollout always finishes, whatever the limit).
        """
        torch.set_num_threads(self.torch_threads)
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        best = run_rollouts(self.net, [instance], greedy=True, problem=self.problem)[0]
        best_value = policy_objective(self.problem, instance, best.solution)
        if self.samples <= 0:
            return best.solution
        generator = torch.Generator().manual_seed(int(seed or 0))
        cut_rng = np.random.default_rng(int(seed or 0))
        while deadline is None or time.perf_counter() < deadline:
            n_decisions = len(best.actions)
            if self.follow_incumbent:
                cuts = cut_rng.integers(n_decisions // 2, n_decisions, size=self.samples).tolist()
            else:
                cuts = [0] * self.samples
            rollouts = run_rollouts(
                self.net, [instance] * self.samples, greedy=False, generator=generator, problem=self.problem,
                prefixes=[best.actions[:cut] for cut in cuts], deadline=deadline,
            )
            for rollout in rollouts:
                if rollout.solution is None:
                    continue
                value = policy_objective(self.problem, instance, rollout.solution)
                if value < best_value:
                    best, best_value = rollout, value
            if deadline is None:
                return best.solution
        return best.solution
