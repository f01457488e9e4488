"""One registry of problems and solvers, looked up by name from the CLI, the leaderboard and user code.

A *problem* bundles what the leaderboard needs to run and check any solver on it: how to turn a suite name (or a
file path) into instances, the independent validator, the objective and metrics, and pictures. A *solver* is any
object with ``solve(instance, *, time_limit=None, seed=None) -> solution``, built by a factory from keyword options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Solver(Protocol):
    name: str

    def solve(self, instance: Any, *, time_limit: float | None = None, seed: int | None = None) -> Any: ...


@dataclass
class Problem:
    """How the leaderboard handles one problem.

    Attributes:
        name: ``jobshop``, ...
        env_id: the Gymnasium id ("" while the problem has no env).
        suites: named suites -> one-line description.
        load_suite: suite name, instance name or file path -> list of instances.
        validate: (instance, solution) -> list of violations (empty: valid).
        evaluate: (instance, solution) -> (objective, metrics dict).
        bounds: instance -> (lower_bound, upper_bound) known for it (None where unknown).
        save_picture: (instance, solution, png path, title) -> None, or None if the problem has no picture.
        save_comparison: (instance, {solver: solution}, png path) -> None: one picture comparing the solvers on an
            instance (llmrouting: latency CDFs), or None.
        solution_from_dict: JSON dict -> solution.
        group: instance -> the class it is reported under in the leaderboard's pivot table (e.g. its size).
        default_leaderboard: ``(suite, solvers, time_limit_s)`` runs of the bare ``schedgym bench``.
        default_solver: what ``schedgym solve`` runs without ``--solver``.
        summary_metrics: row metrics whose mean the leaderboard's ranking table shows beside the objective.
    """

    name: str
    env_id: str
    suites: dict[str, str]
    load_suite: Callable[[str], list]
    validate: Callable[[Any, Any], list[str]]
    evaluate: Callable[[Any, Any], tuple[float, dict]]
    bounds: Callable[[Any], tuple[float | None, float | None]]
    solution_from_dict: Callable[[dict], Any]
    save_picture: Callable[..., None] | None = None
    save_comparison: Callable[..., None] | None = None
    group: Callable[[Any], str] = lambda instance: "all"
    default_leaderboard: list[tuple[str, list[str], float | None]] = field(default_factory=list)
    default_solver: str = ""
    summary_metrics: tuple[str, ...] = ()


@dataclass
class SolverEntry:
    problem: str
    name: str
    factory: Callable[..., Solver]
    description: str


PROBLEMS: dict[str, Problem] = {}
SOLVERS: dict[tuple[str, str], SolverEntry] = {}


def register_problem(problem: Problem) -> None:
    PROBLEMS[problem.name] = problem


def register_solver(problem: str, name: str, factory: Callable[..., Solver], description: str) -> None:
    SOLVERS[(problem, name)] = SolverEntry(problem, name, factory, description)


def get_problem(name: str) -> Problem:
    _load_builtins()
    if name not in PROBLEMS:
        raise KeyError(f"unknown problem {name!r}; choose one of {', '.join(PROBLEMS)}")
    return PROBLEMS[name]


def problem_names() -> list[str]:
    _load_builtins()
    return list(PROBLEMS)


def solver_names(problem: str) -> list[str]:
    _load_builtins()
    return [name for (p, name) in SOLVERS if p == problem]


def make_solver(problem: str, name: str, **options: Any) -> Solver:
    """Build solver ``name`` for ``problem``; ``options`` go to its factory (unknown options are ignored)."""
    _load_builtins()
    if (problem, name) not in SOLVERS:
        raise KeyError(f"unknown solver {name!r} for {problem}; choose one of {', '.join(solver_names(problem))}")
    return SOLVERS[(problem, name)].factory(**options)


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from schedgym import problems  # noqa: F401  (registers the built-in problems and solvers)
