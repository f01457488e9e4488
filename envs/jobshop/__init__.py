"""The job-shop scheduling problem: instances, loaders, generator, suites, solution + validator, simulator, env."""

from schedgym.envs.jobshop.generator import TaillardGenerator, generate_taillard, parse_sizes
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.loaders import (
    benchmark_names,
    load_benchmark,
    load_instance,
    parse_orlib,
    parse_taillard,
    read_instance_file,
    to_orlib_text,
    to_taillard_text,
)
from schedgym.envs.jobshop.simulator import ACTION_FILTERS, ActionFilter, JobShopSimulator
from schedgym.envs.jobshop.solution import JobShopSolution, makespan, validate
from schedgym.envs.jobshop.env import JobShopEnv
from schedgym.envs.jobshop.render import gantt_figure, save_gantt_png
from schedgym.envs.jobshop.suites import DMU_CLASSES, SUITES, TAILLARD_CLASSES, resolve_suite, suite_names

__all__ = [
    "ACTION_FILTERS",
    "ActionFilter",
    "DMU_CLASSES",
    "JobShopEnv",
    "JobShopInstance",
    "JobShopSimulator",
    "JobShopSolution",
    "SUITES",
    "TAILLARD_CLASSES",
    "TaillardGenerator",
    "benchmark_names",
    "gantt_figure",
    "generate_taillard",
    "load_benchmark",
    "load_instance",
    "makespan",
    "parse_orlib",
    "parse_sizes",
    "parse_taillard",
    "read_instance_file",
    "resolve_suite",
    "save_gantt_png",
    "suite_names",
    "to_orlib_text",
    "to_taillard_text",
    "validate",
]
