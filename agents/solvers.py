"""Trained policies as leaderboard solvers: ``ppo`` (greedy) and ``ppo-sample`` (best of K sampled rollouts)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from schedgym.agents.checkpoint import DEFAULT_POLICY, PolicyMetadata, load_network
from schedgym.agents.gnn import JobShopGnn
from schedgym.agents.rollout import run_policy
from schedgym.envs.jobshop import JobShopInstance, JobShopSolution


@dataclass
class PpoSolver:
    """Schedules with a trained GNN policy.

    Attributes:
        policy: a shipped policy name or a checkpoint path.
        samples: 0 for one greedy rollout; K > 0 for rounds of one greedy plus K - 1 sampled rollouts run as one
            batch, repeated while the time limit allows another round; the best schedule wins.
        torch_threads: CPU threads for inference (one is fastest for graphs of a few thousand nodes, and leaves
            the other core to a second worker).
    """

    name: str = "ppo"
    policy: str = ""
    samples: int = 0
    torch_threads: int = 1
    net: JobShopGnn = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policy = self.policy or DEFAULT_POLICY["jobshop"]
        self.net, self.metadata = load_network(self.policy, "jobshop")

    def solve(self, instance: JobShopInstance, *, time_limit: float | None = None, seed: int | None = None) -> JobShopSolution:
        torch.set_num_threads(self.torch_threads)
        if self.samples <= 0:
            return run_policy(self.net, [instance], greedy=True)[0]
        generator = torch.Generator().manual_seed(int(seed or 0))
        started = time.perf_counter()
        best: JobShopSolution | None = None
        while True:
            round_started = time.perf_counter()
            flags = [best is None] + [False] * (self.samples - 1)  # the first round includes the greedy rollout
            for solution in run_policy(self.net, [instance] * self.samples, greedy=flags, generator=generator):
                if best is None or solution.makespan(instance) < best.makespan(instance):
                    best = solution
            round_s = time.perf_counter() - round_started
            if time_limit is None or time.perf_counter() - started + round_s > time_limit:
                return best
