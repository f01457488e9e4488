"""The job-shop instance: frozen numpy data plus the bounds and references known for it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class JobShopInstance:
    """A job-shop scheduling instance.

    Every job is a chain of ``n_ops`` operations; operation ``o`` of job ``j`` runs without interruption on machine
    ``machines[j, o]`` for ``durations[j, o]`` time units (zero is allowed: some classic instances, e.g. orb07, have it), after operation ``o - 1`` of the same job has finished.

    Attributes:
        name: instance name (``ta01``) or file stem.
        machines: int64 array ``[n_jobs, n_ops]``, machine id in ``[0, n_machines)`` of every operation.
        durations: int64 array ``[n_jobs, n_ops]``, processing time (>= 0) of every operation.
        optimum: proven optimal makespan, if known.
        lower_bound: best known lower bound on the makespan, if known.
        upper_bound: best known makespan (upper bound), if known.
        reference: where the instance and its bounds come from.
    """

    name: str
    machines: np.ndarray
    durations: np.ndarray
    optimum: int | None = None
    lower_bound: int | None = None
    upper_bound: int | None = None
    reference: str = ""
    n_machines: int = field(init=False)

    def __post_init__(self) -> None:
        machines = np.ascontiguousarray(self.machines, dtype=np.int64)
        durations = np.ascontiguousarray(self.durations, dtype=np.int64)
        if machines.ndim != 2 or machines.shape != durations.shape or machines.size == 0:
            raise ValueError(
                f"instance {self.name!r}: machines {machines.shape} and durations {durations.shape} must be "
                "equal, non-empty [n_jobs, n_ops] arrays"
            )
        if (durations < 0).any():
            raise ValueError(f"instance {self.name!r}: durations must not be negative")
        if (machines < 0).any():
            raise ValueError(f"instance {self.name!r}: machine ids must be >= 0")
        machines.setflags(write=False)
        durations.setflags(write=False)
        object.__setattr__(self, "machines", machines)
        object.__setattr__(self, "durations", durations)
        object.__setattr__(self, "n_machines", int(machines.max()) + 1)

    @property
    def n_jobs(self) -> int:
        return int(self.machines.shape[0])

    @property
    def n_ops(self) -> int:
        """Operations per job."""
        return int(self.machines.shape[1])

    @property
    def n_operations(self) -> int:
        """Operations in total (``n_jobs * n_ops``)."""
        return int(self.machines.size)

    @property
    def size(self) -> str:
        """Size class as ``"<jobs>x<machines>"``, e.g. ``"15x15"``."""
        return f"{self.n_jobs}x{self.n_machines}"

    @property
    def best_bound(self) -> int | None:
        """The value gaps are measured against: the optimum if proven, else the best known upper bound."""
        return self.optimum if self.optimum is not None else self.upper_bound

    def trivial_lower_bound(self) -> int:
        """max(longest job, most loaded machine): a makespan no schedule can beat."""
        job_work = int(self.durations.sum(axis=1).max())
        machine_work = int(np.bincount(self.machines.ravel(), self.durations.ravel()).max())
        return max(job_work, machine_work)

    def __repr__(self) -> str:
        return f"JobShopInstance({self.name!r}, {self.n_jobs} jobs x {self.n_machines} machines)"
