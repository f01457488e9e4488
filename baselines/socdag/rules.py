"""Online socdag rules: each picks one (ready task, PE) pair per decision of :class:`SocDagSimulator`.

Run times are only known in expectation, so every rule scores with the expected times the simulator exposes:
``expected_finish_us`` (EFT) of every legal pair, ``instance.expected_us`` (run time alone).

* ``heft-online``: the ready task of highest upward rank (HEFT's priority), on its earliest-finish PE.
* ``eft``: the legal pair with the earliest expected finish over every ready task and PE.
* ``etf``: the legal pair with the earliest expected start (ties: earliest finish).
* ``met``: the longest-waiting ready task on the PE that runs it fastest (minimum execution time, load ignored).
* ``random``: a legal pair uniformly at random (seeded).
* ``srpt``: late binding (a PE holds only the task it runs), shortest remaining work first. The ready tasks are
  taken in order of their job's expected work left (ties: highest upward rank). Each one either starts now on an
  idle PE, if it finishes there within ``SRPT_SLACK`` (25%) of its earliest finish on any PE, or else *reserves*
  its best PE: the tasks after it see that PE's finish pushed back by the reserved run time. The first task that
  can start is committed; when none can, the rule waits for the next event. Shortest-remaining-work-first is the
  classic rule for mean flow time; late binding lets a small job's task overtake the tasks of bigger jobs for a
  PE, which a first-in first-out PE queue never allows, and the reservations keep tasks of lower priority from all
  waiting for the same accelerator while other PEs idle.

The early-binding rules return a (task, PE) pair; a late-binding rule may return ``None``: wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from schedgym.envs.socdag import SocDagInstance, SocDagSimulator, SocDagSolution
from schedgym.envs.socdag.simulator import DEFAULT_QUEUE_CAPACITY, LATE_BINDING_CAPACITY

#: ``srpt`` commits a task to an idle PE when its expected time to finish there is at most 1 + SRPT_SLACK times
#: its time to finish on its best PE (busy or not, reservations included). On the built-in streams, seeds 0-12,
#: 0.25 gave 0.953x online HEFT's mean job duration at 40 jobs/ms without noise (worst seed 0.995), against 0.960
#: for 0.1 and 0.958 for 0.5, and was within 2% of them at 80 jobs/ms (0.625 / 0.627 / 0.613).
SRPT_SLACK = 0.25


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


def _srpt(sim: SocDagSimulator, rank: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    ready = np.asarray(sim.ready)
    finish_us = sim.expected_finish_us(sim.ready, legal_only=False)
    idle = sim.legal_pairs()
    run_us = sim.instance.expected_us[ready]
    reserved_us = np.zeros(sim.instance.n_pes)
    work_left = sim.job_work_left_us[sim.instance.task_job[ready]]
    for row in np.lexsort((-rank[ready], work_left)):
        finish = finish_us[row] + reserved_us
        best_pe = int(finish.argmin())
        finish_idle = np.where(idle[row], finish, np.inf)
        pe = int(finish_idle.argmin())
        if finish_idle[pe] - sim.now_us <= (1.0 + SRPT_SLACK) * (finish[best_pe] - sim.now_us) + 1e-9:
            return int(ready[row]), pe
        reserved_us[best_pe] += run_us[row, best_pe]
    return None


Chooser = Callable[[SocDagSimulator, np.ndarray, np.random.Generator], tuple[int, int] | None]
#: rule name -> (chooser, one-line description, queue capacity of the simulator it runs on)
ONLINE_RULES: dict[str, tuple[Chooser, str, int]] = {
    "heft-online": (_heft_online, "online HEFT: highest upward-rank ready task on its earliest-finish PE", DEFAULT_QUEUE_CAPACITY),
    "eft": (_eft, "EFT-greedy: the (ready task, PE) pair that finishes earliest", DEFAULT_QUEUE_CAPACITY),
    "etf": (_etf, "ETF: the (ready task, PE) pair that starts earliest", DEFAULT_QUEUE_CAPACITY),
    "met": (_met, "MET: longest-waiting ready task on its fastest PE (load ignored)", DEFAULT_QUEUE_CAPACITY),
    "random": (_random, "a legal (ready task, PE) pair at random", DEFAULT_QUEUE_CAPACITY),
    "srpt": (_srpt, "late binding, shortest remaining work first: a task takes an idle PE near its best, else reserves its best PE; or waits", LATE_BINDING_CAPACITY),
}
#: Rules that read the upward rank.
_RANKED = {"heft-online", "srpt"}


@dataclass
class OnlineRule:
    """A rule of :data:`ONLINE_RULES` as a solver; ``queue_capacity`` is the simulator's (tasks per PE; default:
    the rule's own, 1 for the late-binding ``srpt``)."""

    name: str
    queue_capacity: int | None = None

    def __post_init__(self) -> None:
        if self.name not in ONLINE_RULES:
            raise ValueError(f"unknown online rule {self.name!r}; choose one of {', '.join(ONLINE_RULES)}")
        if self.queue_capacity is None:
            self.queue_capacity = ONLINE_RULES[self.name][2]

    def solve(self, instance: SocDagInstance, *, time_limit: float | None = None, seed: int | None = None) -> SocDagSolution:
        choose = ONLINE_RULES[self.name][0]
        rank = instance.upward_rank() if self.name in _RANKED else np.zeros(0)
        rng = np.random.default_rng(seed)
        sim = SocDagSimulator(instance, self.queue_capacity)
        while not sim.done:
            move = choose(sim, rank, rng)
            if move is None:
                sim.wait()
            else:
                sim.commit(*move)
        return sim.solution()
