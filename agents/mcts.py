"""``ppo-mcts``: planning at decision time for the memmap placer, an AlphaZero-style tree search over the exact env.

The simulator is exact and deterministic, so the search needs no learned dynamics model: a tree node holds the
env itself (:meth:`~schedgym.envs.memmap.env.MemoryMappingEnv.fork`), and a node's children are the envs one
decision later. Decisions with one legal action (a buffer that fits nowhere) are taken on the way into a node, so
every node is a real choice.

* **Selection** (PUCT): from the root, the child maximizing ``Q + c_puct * P * sqrt(N) / (1 + n)``, with ``P`` the
  network's masked softmax at temperature ``prior_temperature`` (the prior; the PPO policy is sharp, and a flatter
  prior lets the search try what it ranks second and third), ``n`` a child's visits, ``N`` the node's, and ``Q`` the child's mean value,
  min-max normalized over the values seen in the tree (MuZero); an unvisited child counts with its parent's mean.
* **Evaluation**: a new leaf gets its prior and value from one network forward pass, batched over ``batch`` leaves
  selected in turn with a virtual loss (each selection counts as a visit of the tree's lowest value until its leaf
  is evaluated). Its value is ``(1 - value_weight)`` times the exact return of the episode completed from it by the
  best-fit rule (:func:`~schedgym.envs.memmap.kernels.complete_best_fit`, compiled: microseconds per buffer) plus
  ``value_weight`` times the return so far plus the value head's estimate of the rest. Values are returns from the
  episode's start (the env's rewards summed), so nodes at any depth compare.
* **Exhaustion**: a node whose every episode has been completed (terminal, or all its children exhausted) is
  skipped by the selection; once the root is exhausted its decision is searched to the end (small programs are
  enumerated within a second).
* **Acting**: after the decision's simulations, the root moves to the child under which the best complete episode
  was found (ties: the most visited; a single-player search keeps the best, as in SP-MCTS), keeping its subtree.

Every completed episode is a valid map; the best one found is the answer. With a time limit the budget is spent
front-loaded: each decision gets the time left over at most ``horizon`` decisions (the buffers come largest first,
and those decide most); once a decision's share is below the cost of one evaluation the search stops and the best
episode found is returned, so on programs of thousands of buffers the network plans the first decisions and the
best-fit completions carry the rest.

No self-play training: the policy searched is the shipped PPO placer as it is.

References: Silver et al., AlphaZero (2018); Schrittwieser et al., MuZero (2020); Wang et al., mallocMuZero (2023);
Schadd et al., Single-Player Monte-Carlo Tree Search (2008).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from schedgym.agents.checkpoint import DEFAULT_POLICY, PolicyMetadata, load_network
from schedgym.agents.rollout import policy_envs, stack_observations
from schedgym.envs.memmap import MemMapInstance, MemMapSolution
from schedgym.envs.memmap import kernels
from schedgym.envs.memmap.env import MemoryMappingEnv


class Node:
    """One state of the search: its env (after the forced decisions that follow the action into it), the return so
    far, and once evaluated the prior over actions; statistics of the values backed up through it."""

    __slots__ = ("env", "observation", "return_so_far", "terminal", "prior", "children", "visits", "value_sum", "best_value", "exhausted")

    def __init__(self, env: MemoryMappingEnv, observation: dict[str, np.ndarray]) -> None:
        self.env = env
        while not _terminal(env) and env.action_masks().sum() == 1:
            observation = env.step(int(np.flatnonzero(env.action_masks())[0]))[0]
        self.observation: dict[str, np.ndarray] | None = observation  # until the network has seen it
        self.terminal = _terminal(env)
        self.return_so_far = kernels.episode_return(env.tables, env.state)
        self.prior: list[tuple[int, float]] | None = None  # (legal action, its prior probability)
        self.children: dict[int, Node] = {}
        self.exhausted = self.terminal  # every episode through this node has been completed
        self.visits = 0
        self.value_sum = 0.0
        self.best_value = -math.inf

    def mean_value(self) -> float:
        return self.value_sum / self.visits if self.visits else -math.inf


def _terminal(env: MemoryMappingEnv) -> bool:
    return env.step_index == env.instance.n_buffers


@dataclass
class MctsSolver:
    """Places buffers with a tree search guided by a trained memmap policy (see the module docstring).

    Attributes:
        policy: a shipped policy name or a checkpoint path (default ``memmap-default``).
        simulations: leaf evaluations per decision without a time limit.
        batch: leaves evaluated per network forward pass.
        c_puct: weight of the prior in the selection.
        value_weight: weight of the value head in a leaf's value (the rest: the best-fit completion's return).
        horizon: with a time limit, a decision gets the time left over ``min(horizon, buffers left)``.
        prior_temperature: the prior is the softmax of the network's logits divided by this (> 1 flattens it).
        torch_threads: CPU threads for inference.
    """

    name: str = "ppo-mcts"
    policy: str = ""
    simulations: int = 64
    batch: int = 16
    c_puct: float = 1.25
    value_weight: float = 0.0
    horizon: int = 16
    prior_temperature: float = 3.0
    torch_threads: int = 1
    net: torch.nn.Module = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.simulations < 1 or self.batch < 1 or self.horizon < 1 or not 0.0 <= self.value_weight <= 1.0 or not self.prior_temperature > 0:
            raise ValueError(
                f"ppo-mcts needs simulations, batch and horizon >= 1, value_weight in [0, 1] and prior_temperature > 0; got "
                f"simulations={self.simulations}, batch={self.batch}, horizon={self.horizon}, value_weight={self.value_weight}, "
                f"prior_temperature={self.prior_temperature}"
            )
        self.policy = self.policy or DEFAULT_POLICY["memmap"]
        self.net, self.metadata = load_network(self.policy, "memmap")
        self.net.eval()

    def solve(self, instance: MemMapInstance, *, time_limit: float | None = None, seed: int | None = None) -> MemMapSolution:
        """The best map found: ``simulations`` leaf evaluations per decision, or searching until ``time_limit``
        seconds (overrun by at most one batch of evaluations). Deterministic without a time limit (no sampling;
        ``seed`` is unused)."""
        torch.set_num_threads(self.torch_threads)
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        env = policy_envs("memmap", [instance], self.net)[0]
        search = _Search(self, Node(env, env.reset(seed=0)[0]))
        root = search.root
        evaluation_s = 0.0
        while not root.terminal:
            if deadline is None:
                for _ in range(-(-self.simulations // self.batch)):
                    if root.exhausted:
                        break
                    search.simulate()
            else:
                decisions_left = instance.n_buffers - root.env.step_index
                share_s = (deadline - time.perf_counter()) / min(self.horizon, decisions_left)
                if root.prior is not None and share_s < evaluation_s:
                    break  # too little time left to search this decision: keep the best episode found
                stop = time.perf_counter() + share_s
                while not root.exhausted:
                    started = time.perf_counter()
                    search.simulate()
                    evaluation_s = time.perf_counter() - started
                    if time.perf_counter() + evaluation_s > stop:
                        break
            root = search.advance()
        return MemMapSolution(search.best_offset)


class _Search:
    """The tree, the range of values seen (for the normalization) and the best complete episode found."""

    def __init__(self, solver: MctsSolver, root: Node) -> None:
        self.solver = solver
        self.root = root
        self.low, self.high = math.inf, -math.inf
        self.best_value = -math.inf
        self.best_offset = np.empty(0, dtype=np.int64)
        if root.terminal:
            self._record(root.env.state)

    def simulate(self) -> None:
        """Select up to ``batch`` leaves (virtual loss), evaluate them in one forward pass, back their values up."""
        paths: list[list[Node]] = []
        pending: set[int] = set()
        virtual = self.low if self.low < math.inf else 0.0
        for _ in range(self.solver.batch):
            if self.root.exhausted:
                break
            path = self._select()
            leaf = path[-1]
            if id(leaf) in pending:
                break
            if leaf.terminal:
                self._backup(path, leaf.return_so_far)
                continue
            pending.add(id(leaf))
            for node in path:
                node.visits += 1
                node.value_sum += virtual
            paths.append(path)
        if not paths:
            return
        values = self._evaluate([path[-1] for path in paths])
        for path, value in zip(paths, values):
            for node in path:
                node.visits -= 1
                node.value_sum -= virtual
            self._backup(path, value)

    def advance(self) -> Node:
        """Move the root to the child holding the best episode found (ties: most visits) and return it."""
        while not self.root.children:  # evaluated and expanded at least once
            self.simulate()
        children = list(self.root.children.values())
        self.root = max(children, key=lambda child: (child.best_value, child.visits))
        return self.root

    def _select(self) -> list[Node]:
        node, path = self.root, [self.root]
        while node.prior is not None and not node.terminal:
            action = self._puct_action(node)
            if action not in node.children:
                twin = node.env.fork()
                node.children[action] = Node(twin, twin.step(action)[0])
                path.append(node.children[action])
                return path
            node = node.children[action]
            path.append(node)
        return path

    def _puct_action(self, node: Node) -> int:
        spread = self.high - self.low if self.high > self.low else 1.0
        parent_q = (node.mean_value() - self.low) / spread if node.visits else 0.0
        scale = self.solver.c_puct * math.sqrt(max(node.visits, 1))
        best_action, best_score = -1, -math.inf
        for action, prior in node.prior:
            child = node.children.get(action)
            if child is not None and child.exhausted:
                continue
            if child is not None and child.visits:
                q, n = (child.mean_value() - self.low) / spread, child.visits
            else:
                q, n = parent_q, 0
            score = q + scale * prior / (1 + n)
            if score > best_score:
                best_action, best_score = action, score
        return best_action

    def _evaluate(self, leaves: list[Node]) -> list[float]:
        """Priors and values of ``leaves``: one forward pass, one best-fit completion each."""
        with torch.inference_mode():
            logits, values = self.solver.net(stack_observations([leaf.observation for leaf in leaves]))
        masks = torch.from_numpy(np.stack([leaf.env.action_masks() for leaf in leaves]))
        priors = torch.softmax(logits.masked_fill(~masks, float("-inf")) / self.solver.prior_temperature, dim=-1).numpy()
        weight = self.solver.value_weight
        results = []
        for leaf, mask, prior, head in zip(leaves, masks.numpy(), priors, values.tolist()):
            leaf.prior, leaf.observation = [(int(a), float(prior[a])) for a in np.flatnonzero(mask)], None
            completed = kernels.MemMapState(*(array.copy() for array in leaf.env.state))
            kernels.complete_best_fit(leaf.env.tables, completed)
            completion = self._record(completed)
            leaf.best_value = max(leaf.best_value, completion)
            results.append((1 - weight) * completion + weight * (leaf.return_so_far + head))
        return results

    def _record(self, state: kernels.MemMapState) -> float:
        """The return of a completed episode's ``state``, kept as the best if it is."""
        value = kernels.episode_return(self.root.env.tables, state)
        if value > self.best_value:
            self.best_value = value
            self.best_offset = state.offset[: self.root.env.instance.n_buffers].copy()
        return value

    def _backup(self, path: list[Node], value: float) -> None:
        self.low, self.high = min(self.low, value), max(self.high, value)
        leaf = path[-1]
        if leaf.terminal:
            leaf.best_value = max(leaf.best_value, self._record(leaf.env.state))
        best = leaf.best_value
        for node in path:
            node.visits += 1
            node.value_sum += value
            node.best_value = max(node.best_value, best)
        for node in reversed(path[:-1]):
            if not all(action in node.children and node.children[action].exhausted for action, _ in node.prior):
                break
            node.exhausted = True
