"""The socdag problem: streaming task DAGs on a heterogeneous SoC - instances, catalogue, generators, STG loader,
solution + validator, simulator, suites, env."""

from schedgym.envs.socdag.instance import SocDagInstance, SocSpec, TaskGraph, topological_order
from schedgym.envs.socdag.catalog import APPLICATIONS, DEFAULT_SOC, LATENCY_US, PE_TYPES, TASK_TYPES, application_instance, topcuoglu2002
from schedgym.envs.socdag.generator import StreamGenerator, draw_noise, random_dag_instance, random_layered_dag, stream_instance
from schedgym.envs.socdag.loaders import load_stg, parse_stg
from schedgym.envs.socdag.solution import SocDagSolution, job_durations_us, metrics, objective, validate
from schedgym.envs.socdag.simulator import SocDagSimulator, execute_plan
from schedgym.envs.socdag.suites import SUITES, load_instance, resolve_suite
from schedgym.envs.socdag.render import gantt_figure, save_gantt_png


def __getattr__(name: str):
    """``SocDagEnv`` and ``SocDagBatch`` load on first use: their encoder (:mod:`schedgym.graphs.socdag`) reads the
    state layout of :mod:`schedgym.envs.socdag.kernels`, so importing them here would make the two packages import
    each other."""
    if name == "SocDagEnv":
        from schedgym.envs.socdag.env import SocDagEnv

        return SocDagEnv
    if name == "SocDagBatch":
        from schedgym.envs.socdag.batched import SocDagBatch

        return SocDagBatch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APPLICATIONS", "DEFAULT_SOC", "SUITES", "SocDagBatch", "SocDagEnv", "gantt_figure", "load_instance", "resolve_suite", "save_gantt_png", "LATENCY_US", "PE_TYPES", "TASK_TYPES", "SocDagInstance", "SocDagSimulator",
    "SocDagSolution", "SocSpec", "StreamGenerator", "TaskGraph", "application_instance", "draw_noise", "execute_plan",
    "job_durations_us", "load_stg", "metrics", "objective", "parse_stg", "random_dag_instance", "random_layered_dag",
    "stream_instance", "topcuoglu2002", "topological_order", "validate",
]
