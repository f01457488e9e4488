"""What the batched engines share: views of one slot, and arrays that grow without losing what they hold.

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
