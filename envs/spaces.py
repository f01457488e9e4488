"""A ``Discrete`` action space that knows which actions are legal right now."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gymnasium import spaces


class MaskedDiscrete(spaces.Discrete):
    """``Discrete(n)`` whose ``sample()`` draws among the currently legal actions.

    ``mask_fn`` returns the env's current bool mask ``[n]``; an explicit ``mask`` passed to ``sample`` wins.
    The space still contains every action in ``[0, n)``: legality is the env's to check, and it raises on an
    illegal action.
    """

    def __init__(self, n: int, mask_fn: Callable[[], np.ndarray], seed: int | None = None) -> None:
        super().__init__(n, seed=seed)
        self.mask_fn = mask_fn

    def sample(self, mask: np.ndarray | None = None, probability: np.ndarray | None = None) -> np.int64:
        if mask is None and probability is None:
            legal = np.asarray(self.mask_fn(), dtype=np.int8)
            if legal.any():
                mask = legal
        return super().sample(mask=mask, probability=probability)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, spaces.Discrete) and self.n == other.n and self.start == other.start
