"""What the batched engines share: views of one slot, and arrays that grow without losing what they hold.

An engine keeps its kernel arrays in NamedTuples whose fields carry a leading ``[B]`` axis (one row per slot).
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

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
