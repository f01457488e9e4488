"""What the batched engines share: per-slot seeding, reset and action checks (:class:`SlotBatch`), views of one
slot, and arrays that grow without losing what they hold.

An engine keeps its kernel arrays in NamedTuples whose fields carry a leading ``[B]`` axis (one row per slot).
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import numpy as np

Arrays = TypeVar("Arrays", bound=NamedTuple)


def slot_views(arrays: Arrays, b: int) -> Arrays:
    """Slot ``b``'s views of a NamedTuple of batched arrays (writing them writes the batch)."""
    return type(arrays)(*(a[b] for a in arrays))


def grown(old: Arrays, new: Arrays) -> Arrays:
    """``new`` (arrays of the same fields, each at least as large) with ``old``'s contents copied into its leading
    corner."""
    for before, after in zip(old, new):
        after[tuple(slice(0, n) for n in before.shape)] = before
    return new


def slot_rngs(seed: int | None, n_envs: int) -> list[np.random.Generator]:
    """One generator per slot: ``numpy.random.default_rng(seed + b)`` for slot ``b`` (fresh entropy when ``seed`` is
    None), the seeding every batched engine documents."""
    if seed is None:
        return [np.random.default_rng(s) for s in np.random.SeedSequence().spawn(n_envs)]
    return [np.random.default_rng(int(seed) + b) for b in range(n_envs)]


def first_masked_action(actions: np.ndarray, action_mask: np.ndarray) -> int:
    """The first slot whose action is out of range or masked in ``action_mask`` (int ``[B, n_actions]``), -1 if none."""
    in_range = (actions >= 0) & (actions < action_mask.shape[1])
    legal = in_range & (action_mask[np.arange(len(actions)), np.where(in_range, actions, 0)] == 1)
    return -1 if legal.all() else int(np.argmin(legal))


class SlotBatch:
    """The part of a batched engine that is the same on every problem. A subclass sets ``n_envs`` and
    ``observation`` (its stacked observation arrays, with ``action_mask`` int ``[B, n_actions]`` unless it
    overrides :meth:`action_masks`), calls :meth:`seed` in its constructor, and defines ``_reset_slot(b)``: start
    a fresh episode in slot ``b``, drawing from ``self._rngs[b]``."""

    n_envs: int
    observation: dict[str, np.ndarray]

    def seed(self, seed: int | None) -> None:
        """Slot ``b`` draws its instances from ``numpy.random.default_rng(seed + b)`` from the next :meth:`reset`
        on (fresh entropy when ``seed`` is None)."""
        self._rngs = slot_rngs(seed, self.n_envs)

    def seed_groups(self, seed: int, group_size: int) -> None:
        """From the next :meth:`reset` on, slot ``b`` draws from ``numpy.random.default_rng(seed + b // group_size)``:
        the slots of each group of ``group_size`` start on the same instance (the group rollouts of
        :mod:`schedgym.agents.ppo`). Raises ``ValueError`` if the slots do not split into such groups."""
        if group_size < 1 or self.n_envs % group_size:
            raise ValueError(f"{self.n_envs} slots do not split into groups of {group_size}; make n_envs a multiple of group_size")
        self._rngs = [np.random.default_rng(int(seed) + b // group_size) for b in range(self.n_envs)]

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start a fresh episode in every slot; returns :attr:`observation`."""
        if seed is not None:
            self.seed(seed)
        for b in range(self.n_envs):
            self._reset_slot(b)
        self._observe_reset()
        return self.observation

    def _reset_slot(self, b: int) -> None:
        raise NotImplementedError

    def _observe_reset(self) -> None:
        """After :meth:`reset` reset every slot: an engine that writes the observations of many slots in one call
        writes them here (the others wrote each slot's in ``_reset_slot``)."""

    def action_masks(self) -> np.ndarray:
        """bool ``[B, n_actions]``: the allowed actions of every slot."""
        return self.observation["action_mask"].astype(bool)

    def _slot_actions(self, actions: np.ndarray, each: str) -> np.ndarray:
        """``actions`` as int64 ``[B]``. Raises ``ValueError`` (naming ``each``, what one action is) if it is not one
        action per slot."""
        actions = np.asarray(actions)
        if actions.shape != (self.n_envs,):
            raise ValueError(f"actions has shape {actions.shape}, expected ({self.n_envs},): one {each} per slot")
        return actions.astype(np.int64)
