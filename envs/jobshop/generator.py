"""Seeded Taillard-style instance generator."""

from __future__ import annotations

import numpy as np

from schedgym.envs.jobshop.instance import JobShopInstance


def generate_taillard(
    n_jobs: int,
    n_machines: int,
    rng: np.random.Generator | int | None = None,
    *,
    min_duration: int = 1,
    max_duration: int = 99,
    name: str | None = None,
) -> JobShopInstance:
    """A random instance in Taillard's style: durations uniform on ``[min_duration, max_duration]``, every job
    visits every machine once in an independent uniformly random order.

    Args:
        n_jobs, n_machines: size of the instance.
        rng: a numpy Generator, or a seed for a new one.
    """
    rng = np.random.default_rng(rng)
    durations = rng.integers(min_duration, max_duration + 1, size=(n_jobs, n_machines))
    machines = np.argsort(rng.random((n_jobs, n_machines)), axis=1)
    return JobShopInstance(name or f"gen-{n_jobs}x{n_machines}", machines, durations)


class TaillardGenerator:
    """Draws instances whose size is picked uniformly from a list of ``(n_jobs, n_machines)`` sizes.

    Used by the env to draw a fresh instance at every reset, from the env's own ``np_random``.
    """

    def __init__(self, sizes: list[tuple[int, int]], *, min_duration: int = 1, max_duration: int = 99) -> None:
        if not sizes:
            raise ValueError("TaillardGenerator needs at least one (n_jobs, n_machines) size")
        self.sizes = [(int(j), int(m)) for j, m in sizes]
        self.min_duration = min_duration
        self.max_duration = max_duration

    @property
    def max_jobs(self) -> int:
        return max(j for j, _ in self.sizes)

    @property
    def max_machines(self) -> int:
        return max(m for _, m in self.sizes)

    def __call__(self, rng: np.random.Generator) -> JobShopInstance:
        n_jobs, n_machines = self.sizes[int(rng.integers(len(self.sizes)))]
        return generate_taillard(n_jobs, n_machines, rng, min_duration=self.min_duration, max_duration=self.max_duration)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"10x10,15x15"`` -> ``[(10, 10), (15, 15)]``."""
    sizes = []
    for token in text.split(","):
        try:
            jobs, machines = token.lower().split("x")
            sizes.append((int(jobs), int(machines)))
        except ValueError:
            raise ValueError(f"size {token!r} is not '<jobs>x<machines>', e.g. 15x15") from None
    return sizes
