"""A batched engine as a stable-baselines3 ``VecEnv``: SB3 and sb3-contrib algorithms train on it unchanged.

    from sb3_contrib import MaskablePPO
    from schedgym.envs.vector import make_vec_env

    env = make_vec_env("jobshop", TaillardGenerator([(15, 15)]), n_envs=64, seed=0)
    MaskablePPO(GnnMaskablePolicy, env).learn(100_000)

Unlike ``DummyVecEnv`` over B Gymnasium envs, every call is one call into the engine for all B slots (one compiled
step, one observation write); MaskablePPO's ``env_method("action_masks")`` reads the engine's mask array at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from schedgym.envs.jobshop.batched import JobShopBatch
from schedgym.envs.llmrouting.batched import LlmRoutingBatch
from schedgym.envs.memmap.batched import MemMapBatch
from schedgym.envs.socdag.batched import SocDagBatch


class BatchedEngine(Protocol):
    """What :class:`BatchedVecEnv` needs of a batched engine (e.g. :class:`~schedgym.envs.jobshop.batched.JobShopBatch`)."""

    n_envs: int
    observation_space: spaces.Dict
    action_space: spaces.Space
    render_mode: str | None

    def seed(self, seed: int | None) -> None: ...
    def reset(self) -> dict[str, np.ndarray]: ...
    def action_masks(self) -> np.ndarray: ...
    def step(self, actions: np.ndarray, terminal_observations: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]: ...


class BatchedVecEnv(VecEnv):
    """SB3 ``VecEnv`` over one batched engine holding ``engine.n_envs`` slots.

    Observations are handed out as copies (the engine rewrites its arrays in place, while SB3 keeps the previous
    observation until the step's transition is stored). Finished slots carry ``terminal_observation`` in their
    info and are reset by the engine, as SB3 expects. ``seed(s)`` gives slot b the seed ``s + b`` at the next
    ``reset()`` (SB3's convention).
    """

    def __init__(self, engine: BatchedEngine) -> None:
        self.engine = engine
        self._actions: np.ndarray | None = None
        super().__init__(engine.n_envs, engine.observation_space, engine.action_space)

    # ----------------------------------------------------------------------------------------------- stepping
    def reset(self) -> dict[str, np.ndarray]:
        if self._seeds[0] is not None:
            self.engine.seed(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        return _copy(self.engine.reset())

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions) first")
        actions, self._actions = self._actions, None
        observation, reward, done, infos = self.engine.step(actions, terminal_observations=True)
        return _copy(observation), reward, done, infos

    def action_masks(self) -> np.ndarray:
        """bool ``[B, n_actions]``: every slot's allowed actions."""
        return self.engine.action_masks()

    def close(self) -> None:
        self._actions = None

    # ----------------------------------------------------------------------------------------------- SB3 plumbing
    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The engine's attribute, once per slot asked for (the slots share the engine's settings)."""
        value = getattr(self.engine, attr_name)
        return [value for _ in self._slots(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        if len(self._slots(indices)) != self.num_envs:
            raise ValueError(f"cannot set {attr_name!r} on some slots only: the {self.num_envs} slots share one engine")
        setattr(self.engine, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: Any = None, **method_kwargs) -> list[Any]:
        """``action_masks`` returns one mask per slot asked for; any other engine method is called once and its
        result given to every slot asked for."""
        slots = self._slots(indices)
        if method_name == "action_masks":
            masks = self.engine.action_masks()
            return [masks[b] for b in slots]
        result = getattr(self.engine, method_name)(*method_args, **method_kwargs)
        return [result for _ in slots]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._slots(indices)]

    def _slots(self, indices: None | int | Iterable[int]) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, (int, np.integer)):
            return [int(indices)]
        return [int(b) for b in indices]


#: The batched engine of each problem that has one.
BATCHED_ENGINES: dict[str, type] = {"jobshop": JobShopBatch, "socdag": SocDagBatch, "llmrouting": LlmRoutingBatch, "memmap": MemMapBatch}


def _copy(observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value.copy() for key, value in observation.items()}


def make_vec_env(problem: str, instances: Any, n_envs: int, seed: int | None = None, **engine_options: Any) -> BatchedVecEnv:
    """The batched engine of ``problem`` with ``n_envs`` slots drawing from ``instances`` (what the problem's
    Gymnasium env takes: an instance, a list, a generator or a benchmark name) as a :class:`BatchedVecEnv`;
    ``engine_options`` are the engine's other keyword arguments (e.g. ``action_filter``).

    Raises:
        ValueError: if ``problem`` has no batched engine.
    """
    if problem not in BATCHED_ENGINES:
        raise ValueError(f"no batched engine for problem {problem!r}; batched engines exist for {', '.join(BATCHED_ENGINES)}")
    return BatchedVecEnv(BATCHED_ENGINES[problem](instances, n_envs, seed=seed, **engine_options))
