"""Solvers of the blocking job shop with swaps and shutdowns: blocking-aware dispatching rules and CP-SAT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from schedgym.baselines.cpsat_solve import found_solution, solve_model
from schedgym.baselines.jobshop.rules import RULE_SCORES
from schedgym.envs.jobshop.blocking import BlockingJobShopInstance, BlockingJobShopSimulator
from schedgym.envs.jobshop.blocking_solution import BlockingJobShopSolution


@dataclass
class BlockingRule:
    """A dispatching rule run online in the blocking shop: whenever jobs can move, the best-scored one moves.

    Blocking-aware: with ``release_first`` (the default), a job that holds a machine moves before a job that has
    not entered the shop yet, since moving it frees a machine where letting a new job in takes one; the rule's
    score (:data:`~schedgym.baselines.jobshop.rules.RULE_SCORES`, smaller first) orders each of the two groups,
    ties going to the lowest job index.
    """

    name: str
    release_first: bool = True

    def __post_init__(self) -> None:
        if self.name not in RULE_SCORES:
            raise ValueError(f"unknown dispatching rule {self.name!r}; choose one of {', '.join(RULE_SCORES)}")
        self.score = RULE_SCORES[self.name][0]

    def choose(self, sim: BlockingJobShopSimulator, rng: np.random.Generator) -> int:
        """The job this rule moves among ``sim.candidates``."""
        jobs = np.flatnonzero(sim.candidates)
        scores = self.score(sim, rng)[jobs]
        entering = (sim.held[jobs] < 0) if self.release_first else np.zeros(len(jobs), dtype=bool)
        return int(jobs[np.lexsort((jobs, scores, entering))[0]])

    def solve(self, instance: BlockingJobShopInstance, *, time_limit: float | None = None, seed: int | None = None) -> BlockingJobShopSolution:
        rng = np.random.default_rng(seed)
        sim = BlockingJobShopSimulator(instance)
        sim.settle()
        while not sim.done:
            sim.move(self.choose(sim, rng))
            sim.settle()
        return sim.solution()


@dataclass
class CpSatBlockingJobShop:
    """CP-SAT for the blocking job shop with swaps, knowing the shutdowns in advance (a clairvoyant reference:
    the dispatchers meet each shutdown only when it begins).

    Model: per operation a processing interval (its duration) and a holding interval from its start to the start of
    the job's next operation (the last one: its processing interval); NoOverlap of the holding intervals per
    machine (half-open, so a swap cycle's simultaneous hand-over is allowed), and NoOverlap of the processing
    intervals with the machine's shutdowns: CP-SAT's schedules never let a shutdown interrupt an operation, a
    subset of what the simulator's preempt-resume allows. Hinted with the ``hint_rule`` schedule.
    """

    name: str = "cpsat"
    num_workers: int = 2
    hint_rule: str | None = "mwkr"
    default_time_limit_s: float = 60.0

    def solve(self, instance: BlockingJobShopInstance, *, time_limit: float | None = None, seed: int | None = None) -> BlockingJobShopSolution:
        """Best schedule found within ``time_limit`` seconds; without shutdowns its ``lower_bound`` is the bound
        CP-SAT proved (with them, the bound would hold only for schedules that no shutdown interrupts: none is given).

        Raises:
            RuntimeError: if no feasible schedule was found in time.
        """
        shop = instance.jobshop
        model = cp_model.CpModel()
        horizon = int(shop.durations.sum()) + max((e for _, _, e in instance.shutdowns), default=0)
        starts = np.empty((shop.n_jobs, shop.n_ops), dtype=object)
        for j in range(shop.n_jobs):
            for o in range(shop.n_ops):
                starts[j, o] = model.new_int_var(0, horizon, f"s{j}_{o}")
        holding: list[list] = [[] for _ in range(shop.n_machines)]
        processing: list[list] = [[] for _ in range(shop.n_machines)]
        for j in range(shop.n_jobs):
            for o in range(shop.n_ops):
                machine, duration = int(shop.machines[j, o]), int(shop.durations[j, o])
                # at least one unit, so that an operation of no work still may not start during a shutdown
                processing[machine].append(model.new_fixed_size_interval_var(starts[j, o], max(duration, 1), f"p{j}_{o}"))
                if o + 1 < shop.n_ops:
                    model.add(starts[j, o + 1] >= starts[j, o] + duration)
                    held_for = model.new_int_var(duration, horizon, f"h{j}_{o}")
                    holding[machine].append(model.new_interval_var(starts[j, o], held_for, starts[j, o + 1], f"hold{j}_{o}"))
                else:
                    holding[machine].append(model.new_fixed_size_interval_var(starts[j, o], duration, f"hold{j}_{o}"))
        for m, s, e in instance.shutdowns:
            processing[m].append(model.new_fixed_size_interval_var(s, e - s, f"down{m}_{s}"))
        for m in range(shop.n_machines):
            model.add_no_overlap(holding[m])
            model.add_no_overlap(processing[m])
        makespan = model.new_int_var(0, horizon, "makespan")
        model.add_max_equality(makespan, [starts[j, -1] + int(shop.durations[j, -1]) for j in range(shop.n_jobs)])
        model.minimize(makespan)
        if self.hint_rule is not None:
            hint = BlockingRule(self.hint_rule).solve(instance).start_times
            for (j, o), value in np.ndenumerate(hint):
                model.add_hint(starts[j, o], int(value))
        limit_s = time_limit if time_limit is not None else self.default_time_limit_s
        solver, status = solve_model(model, time_limit_s=limit_s, num_workers=self.num_workers, seed=seed)
        if not found_solution(status):
            raise RuntimeError(f"CP-SAT found no blocking schedule for {instance.name} in time (status {solver.status_name(status)}); raise --time-limit")
        start_times = np.vectorize(solver.value)(starts).astype(np.int64)
        # with shutdowns the bound holds for non-interrupted schedules only, not for the problem's preempt-resume
        bound = None if instance.shutdowns else int(solver.best_objective_bound)
        return BlockingJobShopSolution(instance.name, start_times, list(instance.shutdowns), lower_bound=bound)
