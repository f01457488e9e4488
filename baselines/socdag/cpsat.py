"""One static socdag DAG as a CP-SAT model.

Per task and supporting PE an optional interval (exactly one present), per PE a NoOverlap, per edge and pair of
different PEs a precedence with the transfer delay (enforced when both choices are made), and the makespan
minimized. Times are integers in nanoseconds (exact for the built-in tables, whose latencies are whole
microseconds and data volumes whole KiB at 1 GB/s); the plan is returned through :func:`execute_plan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from schedgym.baselines.cpsat_solve import found_solution, solve_model
from schedgym.baselines.socdag.heft import heft_plan
from schedgym.envs.socdag import SocDagInstance, SocDagSolution, execute_plan

NS_PER_US = 1000


def _ns(time_us: float) -> int:
    """Microseconds -> whole nanoseconds, rounded up (so a plan feasible in ns is feasible in us)."""
    return int(math.ceil(round(time_us * NS_PER_US, 6)))


@dataclass
class CpSatSocDag:
    """CP-SAT for one static DAG (``streaming`` instances are refused), hinted with HEFT's plan.

    Attributes:
        num_workers: CP-SAT search workers (threads).
        default_time_limit_s: time limit used when ``solve`` gets none.
    """

    name: str = "cpsat"
    num_workers: int = 2
    default_time_limit_s: float = 10.0

    def solve(self, instance: SocDagInstance, *, time_limit: float | None = None, seed: int | None = None) -> SocDagSolution:
        """Best plan found within ``time_limit`` seconds, run with the actual times; ``lower_bound_us`` is the
        bound CP-SAT proved (exact when every time is a whole number of nanoseconds).

        Raises:
            ValueError: for a streaming instance (use the online solvers there).
        """
        if instance.streaming or instance.n_jobs != 1:
            raise ValueError(f"cpsat solves one static DAG; {instance.name} is a stream of {instance.n_jobs} jobs - use heft, heft-online or ppo")
        model = cp_model.CpModel()
        supported = instance.supported()
        duration_ns = {(t, p): _ns(instance.expected_us[t, p]) for t, p in zip(*np.nonzero(supported))}
        horizon = sum(max(d for (t2, _), d in duration_ns.items() if t2 == t) for t in range(instance.n_tasks))
        horizon += sum(_ns(float(instance.transfer_us(b, 0, 1))) if instance.n_pes > 1 else 0 for b in instance.edge_bytes)
        horizon = int(horizon * 2 + 1)
        start = [model.new_int_var(0, horizon, f"s{t}") for t in range(instance.n_tasks)]
        end = [model.new_int_var(0, horizon, f"e{t}") for t in range(instance.n_tasks)]
        chosen: dict[tuple[int, int], cp_model.IntVar] = {}
        by_pe: list[list] = [[] for _ in range(instance.n_pes)]
        for (t, p), d in duration_ns.items():
            x = model.new_bool_var(f"x{t}_{p}")
            chosen[t, p] = x
            by_pe[p].append(model.new_optional_fixed_size_interval_var(start[t], d, x, f"i{t}_{p}"))
            model.add(end[t] == start[t] + d).only_enforce_if(x)
        for t in range(instance.n_tasks):
            model.add_exactly_one(chosen[t, p] for p in np.flatnonzero(supported[t]).tolist())
        for intervals in by_pe:
            model.add_no_overlap(intervals)
        for (parent, child), data_bytes in zip(instance.edges.tolist(), instance.edge_bytes.tolist()):
            model.add(start[child] >= end[parent])
            for p in np.flatnonzero(supported[parent]).tolist():
                for q in np.flatnonzero(supported[child]).tolist():
                    delay = _ns(float(instance.transfer_us(data_bytes, p, q)))
                    if delay > 0:
                        model.add(start[child] >= end[parent] + delay).only_enforce_if(chosen[parent, p], chosen[child, q])
        makespan = model.new_int_var(0, horizon, "makespan")
        model.add_max_equality(makespan, end)
        model.minimize(makespan)

        hint = heft_plan(instance)
        for t in range(instance.n_tasks):
            model.add_hint(start[t], _ns(hint.start_us[t]))
            for p in np.flatnonzero(supported[t]).tolist():
                model.add_hint(chosen[t, p], int(hint.pe[t] == p))

        limit_s = time_limit if time_limit is not None else self.default_time_limit_s
        solver, status = solve_model(model, time_limit_s=limit_s, num_workers=self.num_workers, seed=seed)
        if not found_solution(status):
            raise RuntimeError(f"CP-SAT found no plan for {instance.name} in time (status {solver.status_name(status)}); raise --time-limit")
        pe = np.array([next(p for p in np.flatnonzero(supported[t]).tolist() if solver.boolean_value(chosen[t, p])) for t in range(instance.n_tasks)])
        planned_start_us = np.array([solver.value(s) for s in start], dtype=float) / NS_PER_US
        solution = execute_plan(instance, pe, planned_start_us)
        solution.lower_bound_us = solver.best_objective_bound / NS_PER_US
        return solution
