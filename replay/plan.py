"""What a replay runs: a solution turned into tasks on resources, in the solution's order on each resource.

A replay does not copy the solution's start times: each resource runs its tasks in the solution's order, and a
task starts as soon as its predecessors (plus their transfer delays) and its release time allow, as a real runtime
would. The simulated times are kept beside, for the fidelity report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedgym.envs.jobshop import JobShopInstance, JobShopSolution
from schedgym.envs.resource_order import tasks_by_resource
from schedgym.envs.socdag import SocDagInstance, SocDagSolution
from schedgym.replay.kernels import KERNEL_KINDS


@dataclass
class ReplayPlan:
    """Tasks of a replay.

    Attributes:
        problem: ``jobshop`` or ``socdag``.
        resource: int ``[n_tasks]``, the machine or PE a task runs on.
        resource_type: per resource, its type (``machine``; a socdag PE type name such as ``big``), which picks
            the partition it gets on a GPU.
        kind: kernel kind of each task (one of :data:`KERNEL_KINDS`).
        duration_us: float ``[n_tasks]``, the simulated run time, which the kernel is sized to take.
        release_us: float ``[n_tasks]``, earliest start (a socdag job's arrival; 0 for jobshop).
        predecessors: per task, ``(task, delay_us)`` pairs: the task starts after each predecessor ended plus
            its delay (the socdag data transfer between two PEs).
        order: per resource, its task ids in the solution's start order.
        simulated_start_us / simulated_end_us: float ``[n_tasks]``, the solution's times.
        job: int ``[n_tasks]``, the job of each task (for job durations).
    """

    problem: str
    resource: np.ndarray
    resource_type: list[str]
    kind: list[str]
    duration_us: np.ndarray
    release_us: np.ndarray
    predecessors: list[list[tuple[int, float]]]
    order: list[list[int]]
    simulated_start_us: np.ndarray
    simulated_end_us: np.ndarray
    job: np.ndarray

    @property
    def n_tasks(self) -> int:
        return len(self.resource)


def jobshop_plan(instance: JobShopInstance, solution: JobShopSolution, time_scale: float = 100.0) -> ReplayPlan:
    """Operation ``(j, o)`` is task ``j * n_ops + o`` on its machine, after ``(j, o - 1)``; one time unit of the
    instance lasts ``time_scale`` microseconds; machine ``m`` runs kernel kind ``KERNEL_KINDS[m % 4]``."""
    n_jobs, n_ops = instance.durations.shape
    resource = instance.machines.reshape(-1)
    duration = instance.durations.reshape(-1).astype(float) * time_scale
    start = solution.start_times.reshape(-1).astype(float) * time_scale
    predecessors = [[(t - 1, 0.0)] if t % n_ops else [] for t in range(n_jobs * n_ops)]
    return ReplayPlan(
        "jobshop", resource, ["machine"] * instance.n_machines, [KERNEL_KINDS[m % len(KERNEL_KINDS)] for m in resource], duration, np.zeros(len(resource)),
        predecessors, tasks_by_resource(resource, start, instance.n_machines), start, start + duration, np.repeat(np.arange(n_jobs), n_ops),
    )


def socdag_plan(instance: SocDagInstance, solution: SocDagSolution, time_scale: float = 100.0) -> ReplayPlan:
    """Task ``t`` runs on ``solution.pe[t]`` for its actual run time, after each DAG predecessor plus the transfer
    of the edge's bytes between the two PEs, and not before its job arrives; a task type runs the kernel kind
    :func:`socdag_kernel_kinds` gives it. Every time is stretched by ``time_scale`` (the table's microsecond tasks are shorter
    than one CPU kernel unit)."""
    predecessors: list[list[tuple[int, float]]] = [[] for _ in range(instance.n_tasks)]
    for (u, v), size in zip(instance.edges, instance.edge_bytes):
        predecessors[int(v)].append((int(u), time_scale * float(instance.transfer_us(size, solution.pe[u], solution.pe[v]))))
    start, end = solution.start_us * time_scale, solution.end_us * time_scale
    kinds = socdag_kernel_kinds(instance)
    return ReplayPlan(
        "socdag", solution.pe.copy(), [instance.soc.pe_type_names[t] for t in instance.soc.pe_types], [kinds[k] for k in instance.task_type],
        end - start, instance.arrival_us[instance.task_job].astype(float) * time_scale, predecessors,
        tasks_by_resource(solution.pe, solution.start_us, instance.n_pes), start, end, instance.task_job.copy(),
    )


#: An accelerator PE type -> the kernel kind of the task types it runs.
ACCELERATOR_KINDS = {"fft": "fft", "mm": "gemm", "viterbi": "reduction"}


def socdag_kernel_kinds(instance: SocDagInstance) -> list[str]:
    """Kernel kind of each task type: the kind of the first accelerator type (:data:`ACCELERATOR_KINDS`) that
    supports it, else ``elementwise`` for a type only general-purpose cores run. On a SoC without those
    accelerator names (the HEFT example, STG files) task type ``k`` runs ``KERNEL_KINDS[k % 4]``."""
    names = instance.soc.pe_type_names
    accelerators = [(names.index(pe), kind) for pe, kind in ACCELERATOR_KINDS.items() if pe in names]
    if not accelerators:
        return [KERNEL_KINDS[k % len(KERNEL_KINDS)] for k in range(len(instance.task_type_names))]
    supported = ~np.isnan(instance.latency_us)
    return [next((kind for pe, kind in accelerators if supported[k, pe]), "elementwise") for k in range(len(instance.task_type_names))]
