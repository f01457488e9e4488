"""The job shop as a CP-SAT model: one interval per operation, NoOverlap per machine, minimize the makespan."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from schedgym.baselines.cpsat_solve import found_solution, solve_model
from schedgym.baselines.jobshop.rules import DispatchingRule
from schedgym.envs.jobshop import JobShopInstance, JobShopSolution


@dataclass
class CpSatJobShop:
    """CP-SAT solver for the job shop.

    Attributes:
        num_workers: CP-SAT search workers (threads).
        hint_rule: a dispatching rule whose schedule is given as a solution hint (None: no hint).
        default_time_limit_s: time limit used when ``solve`` gets none.
    """

    name: str = "cpsat"
    num_workers: int = 2
    hint_rule: str | None = "fdd-mwkr"
    default_time_limit_s: float = 60.0

    def solve(
        self,
        instance: JobShopInstance,
        *,
        time_limit: float | None = None,
        seed: int | None = None,
        machine_downtime: list[tuple[int, int, int]] | None = None,
        hint_start_times: np.ndarray | None = None,
    ) -> JobShopSolution:
        """Best schedule found within ``time_limit`` seconds; its ``lower_bound`` is the bound CP-SAT proved.
        ``hint_start_times`` (int ``[n_jobs, n_ops]``, a feasible schedule): the hint instead of ``hint_rule``'s.

        Raises:
            RuntimeError: if no feasible schedule was found in time (only possible without a hint).
        """
        downtime = list(machine_downtime or [])
        model = cp_model.CpModel()
        horizon = int(instance.durations.sum()) + sum(e for _, _, e in downtime)
        starts = np.empty((instance.n_jobs, instance.n_ops), dtype=object)
        by_machine: list[list] = [[] for _ in range(instance.n_machines)]
        for j in range(instance.n_jobs):
            for o in range(instance.n_ops):
                duration = int(instance.durations[j, o])
                start = model.new_int_var(0, horizon, f"s{j}_{o}")
                interval = model.new_fixed_size_interval_var(start, duration, f"i{j}_{o}")
                starts[j, o] = start
                by_machine[instance.machines[j, o]].append(interval)
                if o > 0:
                    model.add(start >= starts[j, o - 1] + int(instance.durations[j, o - 1]))
        for m, s, e in downtime:
            by_machine[m].append(model.new_fixed_size_interval_var(s, e - s, f"down{m}_{s}"))
        for intervals in by_machine:
            model.add_no_overlap(intervals)
        makespan = model.new_int_var(0, horizon, "makespan")
        model.add_max_equality(makespan, [starts[j, -1] + int(instance.durations[j, -1]) for j in range(instance.n_jobs)])
        model.minimize(makespan)

        if hint_start_times is None and self.hint_rule is not None:
            hint_start_times = DispatchingRule(self.hint_rule).solve(instance, machine_downtime=downtime).start_times
        if hint_start_times is not None:
            for j in range(instance.n_jobs):
                for o in range(instance.n_ops):
                    model.add_hint(starts[j, o], int(hint_start_times[j, o]))

        limit_s = time_limit if time_limit is not None else self.default_time_limit_s
        solver, status = solve_model(model, time_limit_s=limit_s, num_workers=self.num_workers, seed=seed)
        if not found_solution(status):
            raise RuntimeError(f"CP-SAT found no schedule for {instance.name} in time (status {solver.status_name(status)}); raise --time-limit")
        start_times = np.vectorize(solver.value)(starts).astype(np.int64)
        return JobShopSolution(instance.name, start_times, downtime, lower_bound=int(solver.best_objective_bound))
