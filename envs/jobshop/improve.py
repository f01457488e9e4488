"""The Gymnasium job-shop improvement environment ``schedgym/JobShopImprove-v0``: local search over complete
schedules, one N5 move (or, as an option, one N7 move) per step."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from schedgym.envs.env_batch import EnvBatch
from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule
from schedgym.envs.jobshop.env import source_and_encoder
from schedgym.envs.jobshop.generator import TaillardGenerator
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.render import gantt_rgb
from schedgym.envs.jobshop.solution import JobShopSolution
from schedgym.envs.spaces import MaskedDiscrete
from schedgym.graphs.jobshop_improve import ImproveEncoder


def start_schedule(instance: JobShopInstance, start, rng: np.random.Generator) -> np.ndarray:
    """Start times ``[n_jobs, n_ops]`` of the schedule an episode starts from: ``start`` is a dispatching rule's
    name (``"fdd-mwkr"``, ``"random"``, ... of :data:`schedgym.baselines.jobshop.RULE_SCORES`), a tuple of names
    (one drawn per episode) or any solver (an object with ``solve(instance, seed=...)``, e.g. a trained
    dispatching policy)."""
    if isinstance(start, tuple):
        start = start[int(rng.integers(len(start)))]
    seed = int(rng.integers(2**31))
    if isinstance(start, str):
        from schedgym.baselines.jobshop.rules import DispatchingRule  # the rules drive this package's simulator

        start = DispatchingRule(start)
    return np.asarray(start.solve(instance, seed=seed).start_times)


class JobShopImproveEnv(gym.Env):
    """Job-shop local search: the state is a complete schedule, an action swaps two adjacent critical operations.

    ## Description
    An episode starts from a complete schedule (a dispatching rule's, a policy's, or one given at reset) and makes
    ``horizon`` moves of the N5 neighbourhood (Nowicki and Smutnicki 1996): swap the first two or the last two
    operations of a critical block. Each move is re-evaluated incrementally on the disjunctive graph
    (:class:`~schedgym.envs.jobshop.disjunctive.DisjunctiveSchedule`); the best schedule seen is kept.

    ## Action Space
    ``Discrete(max_jobs * max_ops)``: node ``job * max_ops + op``, whose operation is swapped with the operation
    after it on its machine. ``action_masks()`` (and the observation's ``action_mask``, which
    ``action_space.sample()`` and MaskablePPO draw from) marks the N5 moves of the current schedule (those of every
    critical path). Any other swap that keeps the schedule feasible is made too; an operation last on its machine,
    or whose swap would close a cycle, is a null move (the schedule stays, the step counts). A padding node raises
    ``ValueError``.

    With ``neighbourhood="n7"``: ``Discrete(4 * max_jobs * max_ops)``, action ``kind * max_jobs * max_ops + node``
    makes the N7 move of that kind at the node's operation ``v`` (:mod:`schedgym.envs.jobshop.disjunctive`: 0 ``v``
    to the front of its critical block, 1 to its back, 2 the block's first operation to right after ``v``, 3 its
    last to right before ``v``; they hold the N5 moves). ``action_masks()`` marks those proved acyclic; an action
    outside it is a null move. The observation is the same (its ``action_mask`` still marks the N5 moves); each N7
    move is re-evaluated from scratch. The shipped move selector scores N5 moves, so ``l2s`` and ``ppo-tabu``
    search N5.

    ## Observation Space
    A ``Dict`` of padded disjunctive-graph tensors, see :class:`schedgym.graphs.jobshop_improve.ImproveEncoder`.

    ## Starting State
    The schedule ``start`` builds (default ``"fdd-mwkr"``; see :func:`start_schedule`) on an instance drawn at reset (from the generator, the
    list, or the one instance given), made semi-active. ``reset(options={"instance": inst, "start_times": s})``
    forces either.

    ## Reward
    The decrease of the best makespan so far (0 when a move does not beat it), so the return is the start's
    makespan minus the episode's best (divided by the instance's trivial lower bound with ``normalize_reward=True``).

    ## Episode End
    Truncates after ``horizon`` moves; terminates early when no N5 move exists (a critical path lies on one machine
    or in one job, so the makespan is a lower bound: the schedule is optimal). A start schedule that is already
    optimal allows every action, and the first step ends the episode leaving it unchanged.

    ## Information
    ``makespan`` (current), ``best_makespan``, ``instance`` (name) every step; at the episode's end ``solution``
    (the best schedule, a :class:`JobShopSolution`).

    ## Arguments
    ``gym.make("schedgym/JobShopImprove-v0", instances="ta01", horizon=500, start="fdd-mwkr", neighbourhood="n5")``;
    ``instances`` as for ``schedgym/JobShop-v0``; ``max_jobs`` / ``max_ops`` / ``max_machines`` set the padding.

    ## References
    Nowicki & Smutnicki, A fast taboo search algorithm for the job shop problem, Management Science 42(6), 1996.
    Zhang, Li, Guan & Rao, A tabu search algorithm with a new neighborhood structure for the job shop scheduling
    problem, Computers & Operations Research 34(11), 2007 (N7).
    Balas & Vazacopoulos, Guided local search with shifting bottleneck for job shop scheduling, Management Science
    44(2), 1998 (the acyclicity conditions).
    Zhang et al., Deep reinforcement learning guided improvement heuristic for job shop scheduling, ICLR 2024.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        instances: JobShopInstance | Sequence[JobShopInstance] | TaillardGenerator | str = "ft06",
        *,
        horizon: int = 500,
        start="fdd-mwkr",
        max_jobs: int | None = None,
        max_ops: int | None = None,
        max_machines: int | None = None,
        normalize_reward: bool = False,
        neighbourhood: str = "n5",
        render_mode: str | None = None,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 move, got {horizon}")
        if neighbourhood not in ("n5", "n7"):
            raise ValueError(f"neighbourhood must be 'n5' or 'n7', got {neighbourhood!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        self.source, padding = source_and_encoder(instances, max_jobs, max_ops, max_machines)
        self.encoder = ImproveEncoder(padding.max_jobs, padding.max_ops, padding.max_machines)
        self.horizon = int(horizon)
        self.start = tuple(start) if isinstance(start, list) else start
        self.normalize_reward = normalize_reward
        self.n7 = neighbourhood == "n7"
        self.render_mode = render_mode
        self.observation_space = self.encoder.observation_space
        n_actions = self.encoder.n_nodes * (4 if self.n7 else 1)
        self.action_space = MaskedDiscrete(n_actions, self.action_masks)
        self.schedule: DisjunctiveSchedule | None = None
        self._moves = np.zeros(0, dtype=np.int8)
        self._mask = np.zeros(n_actions, dtype=bool)

    # ----------------------------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        start_times = options.pop("start_times", None)
        instance = self.source.draw(self.np_random, options)
        if start_times is None:
            start_times = start_schedule(instance, self.start, self.np_random)
        self.schedule = DisjunctiveSchedule.from_start_times(instance, start_times)
        flat = np.arange(instance.n_operations)
        self._nodes = flat // instance.n_ops * self.encoder.max_ops + flat % instance.n_ops  # each operation's node
        self._fixed = self.encoder.fixed_fields(instance)
        self._reward_scale = 1.0 / instance.trivial_lower_bound() if self.normalize_reward else 1.0
        self.best_makespan = self.schedule.makespan
        self.best_start_times = self.schedule.start_times()
        self.moves_made = 0
        return self._observation(), self._info()

    def step(self, action):
        if self.schedule is None:
            raise RuntimeError("call reset() before step()")
        n_nodes = self.encoder.n_nodes
        node = int(action) % n_nodes if 0 <= int(action) < len(self._mask) else -1
        if not self._real(node):
            raise ValueError(
                f"invalid action {action!r}: an action is a node of one of the instance's operations"
                + (f" (+ kind x {n_nodes} for the N7 move of kind 0-3)" if self.n7 else "")
                + f"; the moves of this schedule are the actions {np.flatnonzero(self._mask).tolist()}"
            )
        operation = self.encoder.operation(node, self.schedule.n_ops)
        reward = 0.0
        self.moves_made += 1
        makespan = self.schedule.makespan
        if self.n7 and not self._optimal and self._mask[int(action)]:
            makespan = self.schedule.n7_move(operation, int(action) // n_nodes)
        elif not self.n7 and not self._optimal and (self._mask[node] or self._feasible_swap(operation)):
            makespan = self.schedule.swap(operation)
        if makespan < self.best_makespan:
            reward = float(self.best_makespan - makespan) * self._reward_scale
            self.best_makespan = makespan
            self.best_start_times = self.schedule.start_times()
        terminated = self._optimal
        observation = self._observation()
        terminated = terminated or self._optimal
        truncated = not terminated and self.moves_made >= self.horizon
        info = self._info()
        if terminated or truncated:
            info["solution"] = JobShopSolution(self.schedule.instance.name, self.best_start_times)
        return observation, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """bool ``[max_jobs * max_ops]`` (N7: four times that, one block per kind): the moves of the current
        schedule (sb3-contrib's MaskablePPO reads this)."""
        return self._mask.copy()

    def render(self):
        if self.render_mode == "rgb_array" and self.schedule is not None:
            return gantt_rgb(self.schedule.instance, JobShopSolution(self.schedule.instance.name, self.schedule.start_times()))
        return None

    # ----------------------------------------------------------------------------------------------- helpers
    def _real(self, node: int) -> bool:
        """Whether ``node`` stands for an operation of the instance (not padding)."""
        if not 0 <= node < self.encoder.n_nodes:
            return False
        job, op = divmod(node, self.encoder.max_ops)
        return job < self.schedule.instance.n_jobs and op < self.schedule.n_ops

    def _feasible_swap(self, operation: int) -> bool:
        """Whether ``operation`` has a machine successor and swapping them keeps the schedule acyclic (the swap is
        tried on a copy: this path is only taken for actions outside the mask)."""
        if self.schedule.machine_succ[operation] < 0:
            return False
        try:
            self.schedule.copy().swap(operation)
        except ValueError:
            return False
        return True

    def _observation(self) -> dict[str, np.ndarray]:
        self._moves = self.schedule.moves()
        moves_left = (self.horizon - self.moves_made) / self.horizon
        obs = self.encoder.encode(self.schedule, self._moves, self.best_makespan, moves_left, self._fixed)
        self._optimal = not obs["action_mask"].any()
        if self._optimal:  # nothing to move: any action ends the episode
            obs["action_mask"] = obs["op_mask"].copy()
        if not self.n7:
            self._mask = obs["action_mask"].astype(bool)
        elif self._optimal:
            self._mask = np.tile(obs["op_mask"].astype(bool), 4)
        else:
            masks = self.schedule.n7_moves()
            self._mask[:] = False
            for kind in range(4):
                self._mask[kind * self.encoder.n_nodes + self._nodes] = masks[kind].astype(bool)
        return obs

    def _info(self) -> dict:
        return {"makespan": int(self.schedule.makespan), "best_makespan": int(self.best_makespan), "instance": self.schedule.instance.name}


class JobShopImproveBatch(EnvBatch):
    """``n_envs`` improvement envs stepped together, with stacked observations and auto-reset (the batched
    trainer's and SB3's engine, see :class:`schedgym.envs.env_batch.EnvBatch`). The compiled kernels of
    :mod:`schedgym.envs.jobshop.disjunctive` do the work of a move, so the loop over slots only dispatches."""

    def __init__(self, instances, n_envs: int, *, seed: int | None = None, **env_options) -> None:
        super().__init__([JobShopImproveEnv(instances, **env_options) for _ in range(int(n_envs))], seed=seed)
