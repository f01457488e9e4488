"""B Gymnasium envs stepped together as one batched engine: stacked observations, auto-reset, episode records.

For the envs whose step is already one compiled call on one state (the improvement env, the blocking shop), so that
the loop over slots only dispatches; :class:`schedgym.envs.vector.BatchedVecEnv` turns it into an SB3 ``VecEnv``
and the batched trainer steps it directly.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class EnvBatch:
    """``len(envs)`` envs of one observation space stepped together, their observations stacked into one
    ``[B, ...]`` dict; a finished slot is reset at once (auto-reset), its info carrying ``episode`` (return ``r``,
    length ``l``) and, with ``terminal_observations``, ``terminal_observation``. Each env must expose
    ``action_masks()`` through its observation's ``action_mask``."""

    def __init__(self, envs: list[gym.Env], *, seed: int | None = None) -> None:
        self.envs = envs
        self.n_envs = len(envs)
        self.observation_space = envs[0].observation_space
        self.action_space = envs[0].action_space
        self.render_mode = None
        self._seed = seed
        self._returns = np.zeros(self.n_envs)
        self._lengths = np.zeros(self.n_envs, dtype=np.int64)
        self._observation = {key: np.zeros((self.n_envs, *space.shape), dtype=space.dtype) for key, space in self.observation_space.spaces.items()}

    def seed(self, seed: int | None) -> None:
        """Slot b is reset with seed ``seed + b`` at the next :meth:`reset`."""
        self._seed = seed

    def reset(self) -> dict[str, np.ndarray]:
        for b, env in enumerate(self.envs):
            self._write(b, env.reset(seed=None if self._seed is None else self._seed + b)[0])
        self._seed = None
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._observation

    def action_masks(self) -> np.ndarray:
        """bool ``[B, n_actions]``."""
        return self._observation["action_mask"] != 0

    def step(self, actions: np.ndarray, terminal_observations: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        rewards = np.zeros(self.n_envs, dtype=np.float32)
        dones = np.zeros(self.n_envs, dtype=bool)
        infos: list[dict] = [{} for _ in range(self.n_envs)]
        for b, (env, action) in enumerate(zip(self.envs, np.asarray(actions).tolist())):
            observation, reward, terminated, truncated, info = env.step(action)
            rewards[b] = reward
            self._returns[b] += reward
            self._lengths[b] += 1
            if terminated or truncated:
                dones[b] = True
                infos[b] = {"episode": {"r": float(self._returns[b]), "l": int(self._lengths[b])}, "TimeLimit.truncated": truncated and not terminated}
                if terminal_observations:
                    infos[b]["terminal_observation"] = observation
                self._returns[b], self._lengths[b] = 0.0, 0
                observation = env.reset()[0]
            self._write(b, observation)
        return self._observation, rewards, dones, infos

    def _write(self, b: int, observation: dict[str, np.ndarray]) -> None:
        for key, value in observation.items():
            self._observation[key][b] = value
