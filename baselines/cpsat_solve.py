"""Running a CP-SAT model the way every schedgym CP-SAT baseline does."""

from __future__ import annotations

from ortools.sat.python import cp_model


def solve_model(model: cp_model.CpModel, *, time_limit_s: float, num_workers: int, seed: int | None):
    """Solve ``model`` within ``time_limit_s`` seconds on ``num_workers`` threads with the random seed ``seed``
    (None: 0). Returns the solver (for values and bounds) and the status (see :func:`found_solution`)."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = int(seed or 0)
    return solver, solver.solve(model)


def found_solution(status) -> bool:
    """Whether a CP-SAT status carries a solution (optimal or feasible)."""
    return status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
