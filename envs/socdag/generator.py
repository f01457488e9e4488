"""Seeded generators: random layered DAGs and streaming workloads (Poisson arrivals, noisy run times)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedgym.envs.socdag.catalog import APPLICATIONS, DEFAULT_SOC, LATENCY_US, TASK_TYPES
from schedgym.envs.socdag.instance import SocDagInstance, TaskGraph

#: Run times never drop below this fraction of their table value, whatever the noise.
NOISE_FLOOR = 0.1


def random_layered_dag(n_tasks: int, n_layers: int, rng: np.random.Generator, *, edge_prob: float = 0.4, name: str = "random") -> TaskGraph:
    """A layered DAG of ``n_tasks`` tasks of random built-in types spread over ``n_layers`` layers.

    Every task after the first layer gets one parent drawn from the previous layer plus each other task of that
    layer with probability ``edge_prob``; data volumes are drawn from 1-16 KiB.
    """
    if not 1 <= n_layers <= n_tasks:
        raise ValueError(f"need 1 <= n_layers ({n_layers}) <= n_tasks ({n_tasks})")
    cuts = np.sort(rng.choice(np.arange(1, n_tasks), size=n_layers - 1, replace=False)) if n_layers > 1 else np.array([], dtype=int)
    layers = np.split(np.arange(n_tasks), cuts)
    edges = []
    for previous, layer in zip(layers, layers[1:]):
        for child in layer:
            first = int(rng.choice(previous))
            edges += [(int(p), int(child)) for p in previous if p == first or rng.random() < edge_prob]
    data_bytes = 1024.0 * rng.integers(1, 17, size=len(edges))
    task_types = rng.integers(len(TASK_TYPES), size=n_tasks)
    return TaskGraph(name, task_types, np.array(edges, dtype=np.int64).reshape(-1, 2), data_bytes)


def random_dag_instance(n_tasks: int, n_layers: int, seed: int) -> SocDagInstance:
    """A random layered DAG alone on the default SoC (static, no noise), named ``random-<n>-<layers>-s<seed>``."""
    name = f"random-{n_tasks}-{n_layers}-s{seed}"
    graph = random_layered_dag(n_tasks, n_layers, np.random.default_rng(seed), name=name)
    return SocDagInstance(name, DEFAULT_SOC, TASK_TYPES, LATENCY_US, (graph,), np.array([0]), np.array([0.0]))


def draw_noise(n_tasks: int, rel_std: float, rng: np.random.Generator) -> np.ndarray:
    """Run-time factors ``[n_tasks]``: 1 + rel_std * N(0, 1), truncated below at :data:`NOISE_FLOOR`."""
    if rel_std <= 0:
        return np.ones(n_tasks)
    return np.maximum(NOISE_FLOOR, 1.0 + rel_std * rng.standard_normal(n_tasks))


def stream_instance(
    rate_per_ms: float,
    n_jobs: int,
    noise_rel_std: float,
    seed: int,
    *,
    mix: dict[str, float] | None = None,
    name: str | None = None,
) -> SocDagInstance:
    """A streaming workload on the default SoC.

    Args:
        rate_per_ms: Poisson arrival rate of jobs (jobs per millisecond).
        n_jobs: jobs in the stream (the first arrives at 0).
        noise_rel_std: relative std of every task's run time around its table value.
        seed: seeds the arrivals, the job types and the noise.
        mix: application name -> weight (default: every built-in application alike).
    """
    rng = np.random.default_rng(seed)
    mix = mix or {app: 1.0 for app in APPLICATIONS}
    unknown = set(mix) - set(APPLICATIONS)
    if unknown:
        raise ValueError(f"unknown applications {sorted(unknown)} in the job mix; choose among {list(APPLICATIONS)}")
    apps = tuple(APPLICATIONS[a] for a in mix)
    weights = np.array(list(mix.values()), dtype=float)
    job_app = rng.choice(len(apps), size=n_jobs, p=weights / weights.sum())
    gaps_us = rng.exponential(1000.0 / rate_per_ms, size=n_jobs)
    arrival_us = np.concatenate([[0.0], np.cumsum(gaps_us[1:])])
    n_tasks = int(sum(apps[a].n_tasks for a in job_app))
    noise = draw_noise(n_tasks, noise_rel_std, rng)
    group = f"rate{rate_per_ms:g}-noise{noise_rel_std:g}"
    return SocDagInstance(
        name or f"stream-{group}-s{seed}", DEFAULT_SOC, TASK_TYPES, LATENCY_US, apps, job_app, arrival_us, noise,
        streaming=True, noise_rel_std=noise_rel_std, group=group,
    )


@dataclass(frozen=True)
class StreamGenerator:
    """Draws training workloads: a rate and a noise level uniformly from their ranges, then a fresh stream."""

    rate_per_ms: tuple[float, float] = (2.0, 5.0)
    noise_rel_std: tuple[float, float] = (0.0, 0.3)
    n_jobs: int = 30

    def __call__(self, rng: np.random.Generator) -> SocDagInstance:
        rate = float(rng.uniform(*self.rate_per_ms))
        noise = float(rng.uniform(*self.noise_rel_std))
        return stream_instance(rate, self.n_jobs, noise, int(rng.integers(2**31)), name="generated")
