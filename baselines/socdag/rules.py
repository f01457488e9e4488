"""Online socdag rules: each picks one (ready task, PE) pair per decision of :class:`SocDagSimulator`.

Run times are only known in expectation, so every rule scores with the expected times the simulator exposes:
``expected_finish_us`` (EFT) of every legal pair, ``instance.expected_us`` (run time alone).

* ``heft-online``: the ready task of highest upward rank (HEFT's priority), on its earliest-finish PE.
* ``eft``: the legal pair with the earliest expected finish over every ready task and PE.
* ``etf``: the legal pair with the earliest expected start (ties: earliest finish).
* ``met``: the longest-waiting ready task on the PE that runs it fastest (minimum execution time, load ignored).
* ``random``: a legal pair uniformly at random (seeded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from schedgym.envs.socdag import SocDagInstance, SocDagSimulator, SocDagSolution
from schedgym.envs.socdag.simulator import DEFAULT_QUEUE_CAPACITY


def _heft_online(sim: SocDagSimulator, rank: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    candidates = np.flatnonzero(sim.legal_pairs().any(axis=1))
    task = sim.ready[candidates[np.argmax(rank[np.asarray(sim.ready)[candidates]])]]
    return task, int(np.argmin(sim.expected_finish_us([task])[0]))


def _eft(sim: SocDagSimulator, rank: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    finish = sim.expected_finish_us()
    row, pe = np.unravel_index(np.argmin(finish), finish.shape)
    return sim.ready[row], int(pe)


def _etf(sim: SocDagSimulator, rank: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    finish = sim.expected_finish_us()
    legal = np.isfinite(finish)
    start = np.where(legal, finish - np.where(legal, sim.instance.expected_us[sim.ready], 0.0), np.inf)
    order = np.lexsort((finish.ravel(), start.ravel()))
    row, pe = np.unravel_index(order[0], finish.shape)
    return sim.ready[row], int(pe)


def _met(sim: SocDagSimulator, rank: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    legal = sim.legal_pairs()
    row = int(np.argmax(legal.any(axis=1)))
    task = sim.ready[row]
    run_us = np.where(legal[row], sim.instance.expected_us[task], np.inf)
    return task, int(np.argmin(run_us))


def _random(sim: SocDagSimulator, rank: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    rows, pes = np.nonzero(sim.legal_pairs())
    k = int(rng.integers(len(rows)))
    return sim.ready[rows[k]], int(pes[k])


#: rule name -> (chooser, one-line description)
ONLINE_RULES: dict[str, tuple[Callable[[SocDagSimulator, np.ndarray, np.random.Generator], tuple[int, int]], str]] = {
    "heft-online": (_heft_online, "online HEFT: highest upward-rank ready task on its earliest-finish PE"),
    "eft": (_eft, "EFT-greedy: the (ready task, PE) pair that finishes earliest"),
    "etf": (_etf, "ETF: the (ready task, PE) pair that starts earliest"),
    "met": (_met, "MET: longest-waiting ready task on its fastest PE (load ignored)"),
    "random": (_random, "a legal (ready task, PE) pair at random"),
}


@dataclass
class OnlineRule:
    """A rule of :data:`ONLINE_RULES` as a solver; ``queue_capacity`` is the simulator's (tasks per PE)."""

    name: str
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY

    def __post_init__(self) -> None:
        if self.name not in ONLINE_RULES:
            raise ValueError(f"unknown online rule {self.name!r}; choose one of {', '.join(ONLINE_RULES)}")

    def solve(self, instance: SocDagInstance, *, time_limit: float | None = None, seed: int | None = None) -> SocDagSolution:
        choose = ONLINE_RULES[self.name][0]
        rank = instance.upward_rank() if self.name == "heft-online" else np.zeros(0)
        rng = np.random.default_rng(seed)
        sim = SocDagSimulator(instance, self.queue_capacity)
        while not sim.done:
            sim.commit(*choose(sim, rank, rng))
        return sim.solution()
