"""Trained policies as leaderboard solvers: ``ppo`` (greedy) and ``ppo-sample`` (greedy, then a search of more
rollouts, best kept: sampled around the best schedule so far, sampled whole, or one or two decisions away from the
best, per problem)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from schedgym.agents.checkpoint import DEFAULT_POLICY, PolicyMetadata, load_network
from schedgym.agents.rollout import Rollout, policy_objective, run_rollouts
from schedgym.agents.sampling import SEARCH, SEARCHES


#: The ``deviations`` search deviates at runs of 1 to this many consecutive decisions, in batches of
#: ``DEVIATION_BATCH`` rollouts. Measured with :class:`PpoSolver` on the held-out traces of ``benchmarks/memmap_heldout.py``
#: at 1 s per trace: with every run of a step in one batch, runs of 1 only 29.68% mean improvement, up to 2 29.79%,
#: up to 3 29.48%; runs of up to 2 in batches of 16 / 32 / 64, 29.98% / 30.04% / 29.84% (32 in the benchmark's own
#: run: 29.98%). (Those figures are of the descent that took the first improving batch and went on greedily only; the
#: steepest descent with kept tails was run with these two settings.)
DEVIATION_RUN = 2
DEVIATION_BATCH = 32
#: The problems whose env can keep an earlier solution's decisions (``follow_action``), so the descent has moves
#: that keep the current rollout's tail.
FOLLOWING_PROBLEMS = ("memmap",)
#: Two objective values closer than this fraction of them count as equal (float sums in another order differ by
#: about 1e-16 of them): a rollout improves on the best only by more.
SAME_VALUE = 1e-9


@dataclass
class PpoSolver:
    """Schedules with a trained GNN policy.

    Attributes:
        problem: ``jobshop``, ``socdag``, ``llmrouting`` or ``memmap``.
        policy: a shipped policy name or a checkpoint path.
        samples: 0 for one greedy rollout; K > 0 adds a search (see :meth:`solve`) whose rounds of sampled rollouts
            hold K rollouts each, run as one batch; the best schedule wins.
        search: ``tail``, ``whole`` or ``deviations`` (None: the problem's :data:`~schedgym.agents.sampling.SEARCH`).
        torch_threads: CPU threads for inference (one is fastest for graphs of a few thousand nodes, and leaves
            the other core to a second worker).
    """

    name: str = "ppo"
    problem: str = "jobshop"
    policy: str = ""
    samples: int = 0
    torch_threads: int = 1
    search: str | None = None
    net: torch.nn.Module = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.policy = self.policy or DEFAULT_POLICY[self.problem]
        self.net, self.metadata = load_network(self.policy, self.problem)
        self.search = self.search or SEARCH[self.problem]
        if self.search not in SEARCHES:
            raise ValueError(f"unknown ppo-sample search {self.search!r}; choose one of {', '.join(SEARCHES)}")

    def solve(self, instance, *, time_limit: float | None = None, seed: int | None = None):
        """Greedy rollout; with ``samples`` > 0 also a search of more rollouts, per :attr:`search`:

        * ``tail``: rounds of sampled rollouts that each replay the first decisions of the best rollout so far (a
          number drawn uniformly from half of its decisions up to all but the last) and sample the rest. Sampling
          only the tail makes a rollout cheaper and keeps the search near the best schedule
          (``benchmarks/sampling_search.py`` compares it with whole sampled rollouts in the same time).
        * ``whole``: rounds of rollouts sampled whole.
        * ``deviations``: a steepest descent, then ``whole`` rounds. A move of the descent's current rollout replays
          it up to one of its decisions, takes the network's second-ranked action there (and at up to
          :data:`DEVIATION_RUN` - 1 decisions after it), then goes on in one of two ways: greedily, or keeping the
          current rollout's later decisions wherever they are still allowed (on :data:`FOLLOWING_PROBLEMS`; on
          memmap a buffer keeps its offset or slow memory, and only the buffers it displaced are placed by the
          network). The moves run earliest decision first, each run of decisions greedy then keeping, in batches
          of :data:`DEVIATION_BATCH`. Once every move of the current rollout is tried, the descent moves to the best
          rollout found, if it improves on the current one (by more than the fraction :data:`SAME_VALUE`);
          otherwise it walks the plateau: it starts over from a move that was as good as the best but different
          (:func:`plateau_key`), the first such one found first. Only when none is left do the sampled rounds
          begin (a sampled rollout that improves on the best so far starts the descent again from it). Where the
          first decisions matter most (memmap), sampling the tail does not move them, and a network sure of them
          rarely samples another; a kept tail lets a move change one decision and leave the rest, so that two
          moves in a row can trade one large buffer for another.

        Each round of samples is one batch of ``samples`` rollouts; the best one found replaces the incumbent.
        Without a time limit: the descent (if any), then one round. With one: rounds until the limit; the rollouts
        still running at the limit are abandoned, so the solver overruns it by about one batched decision or one
        replayed action (the greedy rollout always finishes, whatever the limit). The best rollout found so far is
        kept whenever the limit falls, in the middle of a descent step too.
        """
        torch.set_num_threads(self.torch_threads)
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        best = run_rollouts(self.net, [instance], greedy=True, problem=self.problem)[0]
        best_value = policy_objective(self.problem, instance, best.solution)
        if self.samples <= 0:
            return best.solution
        generator = torch.Generator().manual_seed(int(seed or 0))
        cut_rng = np.random.default_rng(int(seed or 0))
        keep_tails = self.problem in FOLLOWING_PROBLEMS
        moves = descent_moves(len(best.actions), keep_tails) if self.search == "deviations" else []
        current = best  # the rollout the descent moves from: the best, or one as good on the plateau
        plateau: list[Rollout] = []  # moves as good as the best, each different from all walked or queued
        seen = {plateau_key(self.problem, best)}
        improved = False  # the best improved since the descent last chose its current rollout
        while deadline is None or time.perf_counter() < deadline:
            if not moves and self.search == "deviations" and (improved or plateau):
                if improved:
                    current, plateau = best, []
                    seen.add(plateau_key(self.problem, best))
                else:
                    current = plateau.pop(0)
                moves, improved = descent_moves(len(current.actions), keep_tails), False
            descending = bool(moves)
            if descending:
                batch, moves = moves[:DEVIATION_BATCH], moves[DEVIATION_BATCH:]
                rollouts = run_rollouts(
                    self.net, [instance] * len(batch), greedy=True, problem=self.problem,
                    prefixes=[current.actions[: min(run)] for run, _ in batch], runner_up_at=[run for run, _ in batch],
                    follow=[current.solution if keep else None for _, keep in batch], deadline=deadline,
                )
            else:
                n_decisions = len(best.actions)
                cuts = cut_rng.integers(n_decisions // 2, n_decisions, size=self.samples).tolist() if self.search == "tail" else [0] * self.samples
                rollouts = run_rollouts(
                    self.net, [instance] * self.samples, greedy=False, generator=generator, problem=self.problem,
                    prefixes=[best.actions[:cut] for cut in cuts], deadline=deadline,
                )
            for rollout in rollouts:
                if rollout.solution is None:
                    continue
                value = policy_objective(self.problem, instance, rollout.solution)
                if value < best_value * (1 - SAME_VALUE):
                    best, best_value, improved = rollout, value, True
                elif descending and value <= best_value * (1 + SAME_VALUE) and (key := plateau_key(self.problem, rollout)) not in seen:
                    seen.add(key)
                    plateau.append(rollout)
            if not descending and deadline is None:
                break
        return best.solution


def plateau_key(problem: str, rollout: Rollout) -> bytes:
    """What makes two equally good rollouts different points to descend from: on memmap the set of buffers in fast
    memory (the modelled runtime depends on nothing else, and maps differing only in offsets abound), elsewhere the
    actions."""
    if problem == "memmap":
        return (rollout.solution.offset >= 0).tobytes()
    return np.asarray(rollout.actions, dtype=np.int64).tobytes()


def descent_moves(n_decisions: int, keep_tails: bool) -> list[tuple[set[int], bool]]:
    """The moves of one ``deviations`` descent step: per run of :func:`deviation_runs`, (run, False) going on
    greedily after it, then (with ``keep_tails``) (run, True) keeping the current rollout's later decisions."""
    return [(run, keep) for run in deviation_runs(n_decisions) for keep in ((False, True) if keep_tails else (False,))]


def deviation_runs(n_decisions: int) -> list[set[int]]:
    """The decisions a ``deviations`` descent step deviates at, one set per rollout: each decision and each run of
    up to :data:`DEVIATION_RUN` consecutive ones, ordered by their first decision."""
    return [set(range(step, step + length)) for step in range(n_decisions) for length in range(1, DEVIATION_RUN + 1) if step + length <= n_decisions]
