"""One registry of problems and solvers, looked up by name from the CLI, the leaderboard and user code.

A *problem* bundles what the leaderboard needs to run and check any solver on it: how to turn a suite name (or a
file path) into instances, the independent validator, the objective and metrics, and pictures. A *solver* is any
object with ``solve(instance, *, time_limit=None, seed=None) -> solution``, built by a factory from keyword options.

Third parties extend both through entry points (see :func:`load_plugins`): the group ``schedgym.envs`` for new
problems with their Gymnasium envs, ``schedgym.solvers`` for new solvers of any problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from dataclasses import dataclass, field
from typing import Any, Protocol

from gymnasium.envs.registration import registry as gym_registry


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
        picture: (instance, solution, title) -> matplotlib Figure of one solution (Gantt chart, offset-time
            picture), or None if the problem has no picture.
        comparison: (instance, {solver: solution}) -> matplotlib Figure comparing the solvers on an instance
            (llmrouting: latency CDFs), or None.
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
    picture: Callable[..., Any] | None = None
    comparison: Callable[..., Any] | None = None
    group: Callable[[Any], str] = lambda instance: "all"
    default_leaderboard: list[tuple[str, list[str], float | None]] = field(default_factory=list)
    default_solver: str = ""
    summary_metrics: tuple[str, ...] = ()


@dataclass
class SolverEntry:
    """A registered solver. ``argument``: the factory option that ``name:value`` sets (``ppo:jobshop-default``
    sets ``policy``), or None when the solver takes none. ``plugin``: the entry point that registered it."""

    problem: str
    name: str
    factory: Callable[..., Solver]
    description: str
    argument: str | None = None
    plugin: str = ""


PROBLEMS: dict[str, Problem] = {}
SOLVERS: dict[tuple[str, str], SolverEntry] = {}
#: The entry-point groups third parties register through; envs first, since a plugin's solvers may be for a
#: problem that another plugin brings.
PLUGIN_GROUPS = ("schedgym.envs", "schedgym.solvers")
#: ``"group: name = value"`` of each entry point that failed to load -> what went wrong. Such plugins are skipped.
PLUGIN_ERRORS: dict[str, str] = {}
#: problem name -> the entry point that registered it (built-in problems are not in here).
PLUGIN_PROBLEMS: dict[str, str] = {}
_plugin_being_loaded = ""
log = logging.getLogger(__name__)


def register_problem(problem: Problem) -> None:
    PROBLEMS[problem.name] = problem
    if _plugin_being_loaded:
        PLUGIN_PROBLEMS[problem.name] = _plugin_being_loaded


def register_solver(problem: str, name: str, factory: Callable[..., Solver], description: str, argument: str | None = None) -> None:
    if ":" in name:
        raise ValueError(f"solver name {name!r} may not contain ':' (it separates the solver from its argument)")
    SOLVERS[(problem, name)] = SolverEntry(problem, name, factory, description, argument, _plugin_being_loaded)


def load_plugins() -> dict[str, str]:
    """Call every entry point of :data:`PLUGIN_GROUPS`; returns :data:`PLUGIN_ERRORS`.

    An entry point names a function without arguments that registers what its package brings: in
    ``schedgym.envs``, ``gymnasium.register(...)`` for its env ids and :func:`register_problem` for the problem they
    pose (so that ``schedgym bench`` can run it); in ``schedgym.solvers``, :func:`register_solver`. A plugin that
    fails to import or to register is logged by name, recorded in :data:`PLUGIN_ERRORS` and skipped: whatever it
    registered before failing is taken back, and every other plugin still loads.
    """
    global _plugin_being_loaded
    for group in PLUGIN_GROUPS:
        for entry_point in entry_points(group=group):
            label = f"{group}: {entry_point.name} = {entry_point.value}"
            registries = (PROBLEMS, SOLVERS, PLUGIN_PROBLEMS, gym_registry)
            before = [dict(r) for r in registries]
            _plugin_being_loaded = f"{entry_point.name} ({entry_point.dist.name if entry_point.dist else entry_point.value})"
            try:
                entry_point.load()()
            except Exception as exc:  # a broken plugin must not break the others
                for registry, saved in zip(registries, before):
                    registry.clear()
                    registry.update(saved)
                PLUGIN_ERRORS[label] = f"{type(exc).__name__}: {exc}"
                log.warning("plugin %s failed to load and is skipped: %s", label, PLUGIN_ERRORS[label])
            finally:
                _plugin_being_loaded = ""
    return PLUGIN_ERRORS


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
    """Build solver ``name`` for ``problem``; ``options`` go to its factory (unknown options are ignored).

    ``name`` may be ``solver:value`` for a solver with an argument: ``ppo:jobshop-default`` is ``ppo`` with
    ``policy="jobshop-default"`` (the value wins over the same option in ``options``).
    """
    _load_builtins()
    base, _, value = name.partition(":")
    if (problem, base) not in SOLVERS:
        raise KeyError(f"unknown solver {base!r} for {problem}; choose one of {', '.join(solver_names(problem))}")
    entry = SOLVERS[(problem, base)]
    if value:
        if entry.argument is None:
            raise KeyError(f"solver {base!r} takes no ':' argument (in {name!r}); write just {base!r}")
        options = {**options, entry.argument: value}
    return entry.factory(**options)


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from schedgym import problems  # noqa: F401  (registers the built-in problems and solvers)

        load_plugins()
