"""Trained policies as leaderboard solvers: ``ppo`` (greedy) and ``ppo-sample`` (best of K sampled rollouts)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from schedgym.agents.checkpoint import DEFAULT_POLICY, PolicyMetadata, load_network
from schedgym.agents.rollout import policy_objective, run_policy


@dataclass
class PpoSolver:
    """Schedules with a trained GNN policy.

    Attributes:
        problem: ``jobshop``, ``socdag``, ``llmrouting`` or ``memmap``.
        policy: a shipped policy name or a checkpoint path.
        samples: 0 for one greedy rollout; K > 0 adds rounds of at most K sampled rollouts, each run as one batch
            (see :meth:`solve`); the best schedule wins.
        torch_threads: CPU threads for inference (one is fastest for graphs of a few thousand nodes, and leaves
            the other core to a second worker).
    """

    name: str = "ppo"
    problem: str = "jobshop"
    policy: str = ""
    samples: int = 0
    torch_threads: int = 1
    net: torch.nn.Module = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policy = self.policy or DEFAULT_POLICY[self.problem]
        self.net, self.metadata = load_network(self.policy, self.problem)

    def solve(self, instance, *, time_limit: float | None = None, seed: int | None = None):
        """Greedy rollout; with ``samples`` > 0 also rounds of sampled rollouts (each round one batch), best kept.

        Without a time limit: the greedy rollout and one round of ``samples`` sampled rollouts. With one: rounds
        start at 4 rollouts and double up to ``samples``, each cut to what the remaining time allows at the last
        measured cost per rollout; sampling stops when not even one more rollout fits.
        """
        torch.set_num_threads(self.torch_threads)
        started = time.perf_counter()
        best = run_policy(self.net, [instance], greedy=True, problem=self.problem)[0]
        best_value = policy_objective(self.problem, instance, best)
        if self.samples <= 0:
            return best
        generator = torch.Generator().manual_seed(int(seed or 0))
        batch = self.samples if time_limit is None else min(4, self.samples)
        rollout_s = time.perf_counter() - started  # wall time of one rollout, re-estimated after every round
        while True:
            if time_limit is not None:
                remaining_s = time_limit - (time.perf_counter() - started)
                batch = min(batch, int(remaining_s / rollout_s))
                if batch < 1:
                    return best
            round_started = time.perf_counter()
            for solution in run_policy(self.net, [instance] * batch, greedy=False, generator=generator, problem=self.problem):
                value = policy_objective(self.problem, instance, solution)
                if value < best_value:
                    best, best_value = solution, value
            rollout_s = (time.perf_counter() - round_started) / batch
            if time_limit is None:
                return best
            batch = min(2 * batch, self.samples)
