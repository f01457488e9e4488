"""Where an env takes the instance of each episode from: a generator or a fixed list. Shared by every env."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class InstanceSource:
    """The instances an env was given, normalised: a name (resolved by ``load``), one instance, a sequence of
    them, or a generator (an object of ``generator_type`` called with a numpy ``Generator``).

    Attributes:
        generator: the generator, or None.
        instances: the list of instances, or None when there is a generator.
    """

    def __init__(self, instances: Any, *, instance_type: type, generator_type: type, load: Callable[[str], Any]) -> None:
        if isinstance(instances, str):
            instances = load(instances)
        if isinstance(instances, instance_type):
            instances = [instances]
        self.generator = instances if isinstance(instances, generator_type) else None
        self.instances = None if self.generator else list(instances)
        if self.instances is not None and not self.instances:
            raise ValueError("no instance given; pass an instance, a list of them, a suite name or a generator")

    def largest(self, size: Callable[[Any], int]) -> int:
        """The largest ``size(instance)`` over the list (not for generators, whose bounds are their own)."""
        return max(size(instance) for instance in self.instances)

    def draw(self, rng: np.random.Generator, options: dict | None) -> Any:
        """``options["instance"]`` if given, else a fresh draw of the generator, else one of the list at random."""
        instance = (options or {}).get("instance")
        if instance is not None:
            return instance
        if self.generator is not None:
            return self.generator(rng)
        return self.instances[int(rng.integers(len(self.instances)))]
