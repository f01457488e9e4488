"""``ppo-mcts``: planning at decision time for the memmap placer, an AlphaZero-style tree search over the exact env.

The simulator is exact and deterministic, so the search needs no learned dynamics model: a tree node holds the
env itself (:meth:`~schedgym.envs.memmap.env.MemoryMappingEnv.fork`), and a node's children are the envs one
decision later. Decisions with one legal action (a buffer that fits nowhere) are taken on the way into a node, so
every node is a real choice.

* **Selection** (PUCT): from the root, the child maximizing ``Q + c_puct * P * sqrt(N) / (1 + n)``, with ``P`` the
  network's masked softmax at temperature ``prior_temperature`` (the prior; the PPO policy is sharp, and a flatter
  prior lets the search try what it ranks second and third), ``n`` a child's visits, ``N`` the node's, and ``Q``
  the child's mean value, min-max normalized over the values seen in the tree (MuZero); an unvisited child counts
  with its parent's mean.
* **Evaluation**: a new leaf is valued by the exact return of the better of two episodes completed from it by a
  rule (:func:`~schedgym.envs.memmap.kernels.complete_best_fit`, compiled, about a microsecond per buffer: the
  undecided buffers each at its best fit, in the MSA-like order and in the env's, largest first); every completion is
  a valid map, so every leaf is also a candidate answer, and from the root the MSA-like completion is the ``msa``
  placer's map, so the search never returns worse. The network expands a node (gives it its prior) once the search
  has come back to it ``expand_after`` times (a forward pass costs as much as a few dozen completions), ``batch``
  nodes per forward pass, selected in turn with a virtual loss (each selection counts as a visit of the tree's
  lowest value until the pass is done). With ``value_weight`` > 0 a new leaf is expanded at once and its value is
  ``(1 - value_weight)`` times its completions' plus ``value_weight`` times the return so far plus the value head's
  estimate of the rest. Values are returns from the episode's start (the env's rewards summed), so nodes at any
  depth compare.
* **Exhaustion**: a node whose every episode has been completed (terminal, or all its children exhausted) is
  skipped by the selection; once the root is exhausted its decision is searched to the end (small programs are
  enumerated within a second).
* **The policy's own line**: before the simulations, the policy's greedy episode is walked into the tree (each node
  on it expanded), so the search starts from the ``ppo`` placer's map and looks for better ones around it; with a
  time limit for at most half of it.
* **Acting**: after the decision's simulations, the root moves to the child under which the best complete episode
  was found (ties: the most visited; a single-player search keeps the best, as in SP-MCTS), keeping its subtree.

Every completed episode is a valid map; the best one found is the answer. With a time limit the budget is spent
front-loaded: each decision gets the time left over at most ``horizon`` decisions (the buffers come largest first,
and those decide most), in batches halved while one takes over half of it; once a decision's share is below the cost of
one leaf evaluation the search stops and the best episode found is returned, so on programs of thousands of buffers
(where one forward pass over the whole program takes 40-180 ms) the network plans the first decisions and the
completions carry the rest.

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
from schedgym.baselines.memmap.heuristics import buffer_order
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
        simulations: without a time limit, the search per decision: ``ceil(simulations / batch)`` rounds, each
            expanding up to ``batch`` nodes (and valuing the new leaves met on the way).
        batch: nodes expanded per network forward pass.
        c_puct: weight of the prior in the selection.
        value_weight: weight of the value head in a leaf's value (the rest: the completion's return).
        horizon: with a time limit, a decision gets the time left over ``min(horizon, buffers left)``.
        prior_temperature: the prior is the softmax of the network's logits divided by this (> 1 flattens it).
        completions: the orders in which a leaf's completions place the buffers still undecided, the best one
            counting: ``msa`` (the MSA-like order, benefit / sqrt(size)) and ``size`` (the env's, largest first).
        expand_after: a node is expanded (its prior computed) on its visit after this many (the first visits back up
            the value of its completions, computed once); with ``value_weight`` > 0, on its first.
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
    completions: tuple[str, ...] = ("msa", "size")
    expand_after: int = 4
    torch_threads: int = 1
    net: torch.nn.Module = field(init=False, repr=False)
    metadata: PolicyMetadata = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.simulations < 1 or self.batch < 1 or self.horizon < 1 or self.expand_after < 1 or not 0.0 <= self.value_weight <= 1.0 or not self.prior_temperature > 0:
            raise ValueError(
                f"ppo-mcts needs simulations, batch, horizon and expand_after >= 1, value_weight in [0, 1] and prior_temperature > 0; got "
                f"simulations={self.simulations}, batch={self.batch}, horizon={self.horizon}, expand_after={self.expand_after}, value_weight={self.value_weight}, "
                f"prior_temperature={self.prior_temperature}"
            )
        if not self.completions or set(self.completions) - {"msa", "size"}:
            raise ValueError(f"unknown ppo-mcts completion orders {self.completions!r}; choose from msa and size")
        self.policy = self.policy or DEFAULT_POLICY["memmap"]
        self.net, self.metadata = load_network(self.policy, "memmap")
        self.net.eval()

    def solve(self, instance: MemMapInstance, *, time_limit: float | None = None, seed: int | None = None) -> MemMapSolution:
        """The best map found: ``simulations`` per decision (see the attribute), or searching until ``time_limit``
        seconds (overrun by at most one batch of evaluations). Deterministic without a time limit (no sampling;
        ``seed`` is unused)."""
        torch.set_num_threads(self.torch_threads)
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        env = policy_envs("memmap", [instance], self.net)[0]
        search = _Search(self, Node(env, env.reset(seed=0)[0]))
        root = search.root
        if not root.terminal:
            search.simulate(1)  # the root valued by its completions (the msa map among them)
            search.add_greedy_episode(deadline, None if time_limit is None else GREEDY_SHARE * time_limit)
        leaf_s, batch = 0.0, self.batch  # the measured cost of one leaf evaluation; the batch size now
        while not root.terminal:
            if deadline is None:
                for _ in range(-(-self.simulations // self.batch)):
                    if root.exhausted:
                        break
                    search.simulate(self.batch)
            else:
                decisions_left = instance.n_buffers - root.env.step_index
                share_s = (deadline - time.perf_counter()) / min(self.horizon, decisions_left)
                if share_s <= 0 or (root.prior is not None and share_s < leaf_s):
                    break  # too little time left to search this decision: keep the best episode found
                stop = time.perf_counter() + share_s
                while not root.exhausted:
                    started = time.perf_counter()
                    evaluated = search.simulate(batch)
                    batch_s = time.perf_counter() - started
                    if evaluated:
                        leaf_s = batch_s / evaluated
                    # halve the batch while one takes over half the decision's share, grow it back below an eighth
                    batch = max(1, batch // 2) if batch_s > share_s / 2 else min(self.batch, 2 * batch) if batch_s < share_s / 8 else batch
                    if time.perf_counter() + batch_s > stop:
                        break
            root = search.advance()
        return MemMapSolution(search.best_offset)


#: With a time limit, the policy's greedy episode goes into the tree first for at most this fraction of the limit
#: (one forward pass per decision: about 4 ms at 1,000 buffers, 180 ms at 10,000); it is given up where its second
#: forward pass says it would take more than twice that.
GREEDY_SHARE = 0.5


class _Search:
    """The tree, the range of values seen (for the normalization) and the best complete episode found."""

    def __init__(self, solver: MctsSolver, root: Node) -> None:
        self.solver = solver
        self.root = root
        instance = root.env.instance
        self.completion_orders = [buffer_order(instance, "msa") if name == "msa" else root.env.tables.order[: instance.n_buffers] for name in solver.completions]
        self.low, self.high = math.inf, -math.inf
        self.best_value = -math.inf
        self.best_offset = np.empty(0, dtype=np.int64)
        if root.terminal:
            self._record(root.env.state)

    def simulate(self, batch: int) -> int:
        """Run selections until ``batch`` nodes wait for the network (virtual loss on their paths), then expand
        them with one forward pass. A new leaf is valued by its completions at once (no network), unless the value
        head weighs in; a leaf the selection comes back to is the one expanded. Returns the leaves valued plus the
        nodes expanded."""
        expand: list[list[Node]] = []  # paths to the nodes the network will expand
        fresh: list[bool] = []  # per such node: not valued yet (it is valued with the network's value head)
        selected: list[list[Node]] = []  # every selection holding a virtual loss, repeats of a waiting node too
        waiting: set[int] = set()
        virtual = self.low if self.low < math.inf else 0.0
        needs_head = self.solver.value_weight > 0
        work = 0
        for _ in range(2 * batch):  # a repeat is not expanded twice, but its virtual loss steers the next selection
            if len(expand) == batch or self.root.exhausted:
                break
            path = self._select()
            leaf = path[-1]
            if leaf.terminal:
                self._backup(path, leaf.return_so_far)
                continue
            if leaf.visits < self.solver.expand_after and not needs_head and id(leaf) not in waiting:
                # valued by its completions (computed at the first visit, kept for the next)
                self._backup(path, self._complete(leaf) if leaf.visits == 0 else leaf.best_value)
                work += 1
                continue
            if id(leaf) not in waiting:
                waiting.add(id(leaf))
                expand.append(path)
                fresh.append(leaf.visits == 0)
            for node in path:
                node.visits += 1
                node.value_sum += virtual
            selected.append(path)
        for path in selected:
            for node in path:
                node.visits -= 1
                node.value_sum -= virtual
        if expand:
            heads = self._expand([path[-1] for path in expand])
            for path, is_fresh, head in zip(expand, fresh, heads):
                if is_fresh:  # valued now: completions and the value head
                    leaf = path[-1]
                    weight = self.solver.value_weight
                    self._backup(path, (1 - weight) * self._complete(leaf) + weight * (leaf.return_so_far + head))
        return work + len(expand)

    def add_greedy_episode(self, deadline: float | None, budget_s: float | None) -> bool:
        """Walk the policy's greedy episode from the root into the tree, expanding each node on the way (one forward
        pass each; the argmax of the prior is the greedy action), and back its return up. Given up (False) when the
        second forward pass times the walk above twice ``budget_s``; cut short (False) once it has taken ``budget_s``
        or at ``deadline`` (the nodes walked stay in the tree)."""
        node, path = self.root, [self.root]
        started = time.perf_counter()
        stop = min(deadline or math.inf, started + (budget_s if budget_s is not None else math.inf))
        while not node.terminal:
            if time.perf_counter() > stop:
                return False
            if node.prior is None:
                expanding = time.perf_counter()
                self._expand([node])
                decisions_left = node.env.instance.n_buffers - node.env.step_index
                # timed on the second pass (the first one on a program's graph pays for allocations)
                if len(path) == 2 and budget_s is not None and (time.perf_counter() - expanding) * decisions_left > 2 * budget_s:
                    return False
            action = max(node.prior, key=lambda pair: pair[1])[0]
            if action not in node.children:
                twin = node.env.fork()
                node.children[action] = Node(twin, twin.step(action)[0])
            node = node.children[action]
            path.append(node)
        self._backup(path, node.return_so_far)
        return True

    def advance(self) -> Node:
        """Move the root to the child holding the best episode found (ties: most visits) and return it."""
        while not self.root.children:  # evaluated and expanded at least once
            self.simulate(1)
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

    def _expand(self, nodes: list[Node]) -> list[float]:
        """Give ``nodes`` their priors (one forward pass); returns the value head's estimate for each."""
        with torch.inference_mode():
            logits, values = self.solver.net(stack_observations([node.observation for node in nodes]))
        masks = torch.from_numpy(np.stack([node.env.action_masks() for node in nodes]))
        priors = torch.softmax(logits.masked_fill(~masks, float("-inf")) / self.solver.prior_temperature, dim=-1).numpy()
        for node, mask, prior in zip(nodes, masks.numpy(), priors):
            node.prior, node.observation = [(int(a), float(prior[a])) for a in np.flatnonzero(mask)], None
        return values.tolist()

    def _complete(self, leaf: Node) -> float:
        """The best return of the completions of ``leaf`` (each episode kept if it is the best so far)."""
        completion = -math.inf
        for order in self.completion_orders:
            completed = kernels.MemMapState(*(array.copy() for array in leaf.env.state))
            kernels.complete_best_fit(leaf.env.tables, completed, order)
            completion = max(completion, self._record(completed))
        leaf.best_value = max(leaf.best_value, completion)
        return completion

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
