"""The blocking job shop with swaps and random machine shutdowns (ISBJSSP): its instance and its simulator.

An option of the job shop rather than a new problem: the same instances (Taillard, DMU, generated), with three
changes that the rules of :mod:`schedgym.envs.jobshop.blocking_kernels` spell out: a job keeps its machine blocked
after an operation until it starts the next one (no buffers), a cycle of blocked jobs may swap machines, and
machines shut down at random, interrupting the running operation, which resumes after the repair.

The simulator runs in time: a decision starts one job's next operation now (with its swap cycle), and time moves on
by itself whenever no job can move. Unlike the classic simulator it never places an operation in the past, so its
decisions can be taken online: a shutdown is known to the policy only from the moment it begins.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from schedgym.envs.jobshop import blocking_kernels as kernels
from schedgym.envs.jobshop.blocking_solution import BlockingJobShopSolution
from schedgym.envs.jobshop.instance import JobShopInstance
from schedgym.envs.jobshop.interruptions import draw_downtime


@dataclass(frozen=True, eq=False)
class BlockingJobShopInstance:
    """A job-shop instance run as a blocking shop with swaps, with the shutdowns its episode meets.

    Attributes:
        jobshop: the machines and durations.
        shutdowns: ``(machine, start, end)`` intervals in which a machine is down, sorted, disjoint per machine.
        shutdown_rate: the rate they were drawn at (see :func:`draw_shutdowns`), for the record.
        name: the instance's name in a suite (``ta01``, ``ta01-shutdown0.05``).
    """

    jobshop: JobShopInstance
    shutdowns: tuple[tuple[int, int, int], ...] = ()
    shutdown_rate: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shutdowns", tuple(sorted((int(m), int(s), int(e)) for m, s, e in self.shutdowns)))
        object.__setattr__(self, "name", self.name or self.jobshop.name)
        for m, s, e in self.shutdowns:
            if not (0 <= m < self.jobshop.n_machines) or not (0 <= s < e):
                raise ValueError(f"instance {self.name!r}: shutdown ({m}, {s}, {e}) needs a machine in [0, {self.jobshop.n_machines}) and 0 <= start < end")
        for (m1, _, e1), (m2, s2, _) in zip(self.shutdowns, self.shutdowns[1:]):
            if m1 == m2 and s2 < e1:
                raise ValueError(f"instance {self.name!r}: shutdowns of machine {m1} overlap at {s2}; merge them")

    @property
    def n_jobs(self) -> int:
        return self.jobshop.n_jobs

    @property
    def n_ops(self) -> int:
        return self.jobshop.n_ops

    @property
    def n_machines(self) -> int:
        return self.jobshop.n_machines

    @property
    def size(self) -> str:
        return self.jobshop.size

    def trivial_lower_bound(self) -> int:
        return self.jobshop.trivial_lower_bound()


def mean_repair_time(instance: JobShopInstance) -> float:
    """The default mean length of a shutdown: the instance's mean operation duration."""
    return float(max(1.0, instance.durations.mean()))


def draw_shutdowns(instance: JobShopInstance, shutdown_rate: float, rng: np.random.Generator, repair_time: float | None = None) -> list[tuple[int, int, int]]:
    """Random shutdowns: per machine a Poisson process of ``shutdown_rate`` shutdowns per mean operation duration
    (so an operation of mean length meets one with probability about ``shutdown_rate``), each lasting an exponential
    time of mean ``repair_time`` (default: the mean operation duration). None at rate 0."""
    mean_duration = mean_repair_time(instance)
    return draw_downtime(instance, shutdown_rate / mean_duration, repair_time or mean_duration, rng)


def suite_instance(instance: JobShopInstance, shutdown_rate: float) -> BlockingJobShopInstance:
    """``instance`` with shutdowns at ``shutdown_rate`` drawn from a seed fixed by its name and the rate, so every
    solver of a suite meets the same ones."""
    if shutdown_rate <= 0:
        return BlockingJobShopInstance(instance, (), 0.0, instance.name)
    seed = zlib.crc32(f"{instance.name}/{shutdown_rate:g}".encode())
    shutdowns = draw_shutdowns(instance, shutdown_rate, np.random.default_rng(seed))
    return BlockingJobShopInstance(instance, tuple(shutdowns), shutdown_rate, f"{instance.name}-shutdown{shutdown_rate:g}")


class BlockingJobShopSimulator:
    """Runs one blocking job shop with swaps in time, one move per :meth:`move` (see the module docstring).

    Attributes (read-only for callers; J = n_jobs, O = n_ops, M = n_machines): the state arrays of
    :mod:`~schedgym.envs.jobshop.blocking_kernels` (``next_op``, ``held``, ``busy_until``, ``holder``,
    ``start_times``, ``end_times``, ``machine_pred``, ``machine_work_left``), and
        candidates: bool ``[J]``, the jobs that can move now (after :meth:`settle`).
        job_ready: int64 ``[J]``, when each job's current operation completes (0 before its first), as the
            classic simulator's; with :attr:`next_duration`, :meth:`remaining_work` and :meth:`done_work` the
            classic dispatching rules score these jobs unchanged.
    """

    def __init__(self, instance: BlockingJobShopInstance) -> None:
        self.instance = instance
        shop = instance.jobshop
        n_jobs, n_ops, n_machines = shop.n_jobs, shop.n_ops, shop.n_machines
        self.jobshop = shop
        self._machines = np.ascontiguousarray(shop.machines, dtype=np.int64)
        self._durations = np.ascontiguousarray(shop.durations, dtype=np.int64)
        per_machine = np.bincount([m for m, _, _ in instance.shutdowns], minlength=n_machines)
        slots = max(1, int(per_machine.max()))
        self.down_start = np.full((n_machines, slots), kernels.NEVER, dtype=np.int64)
        self.down_end = np.full((n_machines, slots), kernels.NEVER, dtype=np.int64)
        self.down_count = np.zeros(n_machines, dtype=np.int64)
        for m, s, e in instance.shutdowns:
            k = self.down_count[m]
            self.down_start[m, k], self.down_end[m, k] = s, e
            self.down_count[m] += 1
        self.next_op = np.zeros(n_jobs, dtype=np.int64)
        self.held = np.full(n_jobs, -1, dtype=np.int64)
        self.busy_until = np.zeros(n_jobs, dtype=np.int64)
        self.holder = np.full(n_machines, -1, dtype=np.int64)
        self.start_times = np.full((n_jobs, n_ops), -1, dtype=np.int64)
        self.end_times = np.full((n_jobs, n_ops), -1, dtype=np.int64)
        self.machine_last = np.full(n_machines, -1, dtype=np.int64)
        self.machine_pred = np.full(n_jobs * n_ops, -1, dtype=np.int64)
        self.machine_work_left = np.bincount(shop.machines.ravel(), shop.durations.ravel(), minlength=n_machines).astype(np.int64)
        self.clock = np.zeros(3, dtype=np.int64)
        self.candidates = np.zeros(n_jobs, dtype=bool)
        self._cycle = np.zeros(n_jobs, dtype=np.int64)
        self._suffix_work = np.zeros((n_jobs, n_ops + 1), dtype=np.int64)
        self._suffix_work[:, :-1] = np.cumsum(shop.durations[:, ::-1], axis=1)[:, ::-1]
        self._jobs = np.arange(n_jobs)

    # ----------------------------------------------------------------------------------------------- queries
    @property
    def now(self) -> int:
        """The current time."""
        return int(self.clock[0])

    @property
    def makespan(self) -> int:
        """Completion time of the last started operation (known to the simulator, which knows the shutdowns)."""
        return int(self.clock[1])

    @property
    def done(self) -> bool:
        """Every job has finished."""
        return int(self.clock[2]) == self.jobshop.n_jobs

    @property
    def job_ready(self) -> np.ndarray:
        return self.busy_until

    @property
    def next_duration(self) -> np.ndarray:
        """int64 ``[J]``: duration of each job's next operation (0 once all started)."""
        column = np.minimum(self.next_op, self.jobshop.n_ops - 1)
        return np.where(self.next_op < self.jobshop.n_ops, self._durations[self._jobs, column], 0)

    def remaining_work(self) -> np.ndarray:
        """int64 ``[J]``: total duration of each job's operations not started yet."""
        return self._suffix_work[self._jobs, self.next_op]

    def done_work(self) -> np.ndarray:
        """int64 ``[J]``: total duration of each job's started operations."""
        return self._suffix_work[:, 0] - self.remaining_work()

    def shutdown_until(self, machine: int) -> int:
        """End of the shutdown of ``machine`` in progress now, or -1 if it is up."""
        return int(kernels.down_until(machine, self.clock[0], self.down_start, self.down_end, self.down_count))

    # ----------------------------------------------------------------------------------------------- decisions
    def settle(self, skip_forced: bool = False) -> np.ndarray:
        """Advance time until some job can move (or every job finished); returns a copy of :attr:`candidates`.
        With ``skip_forced``, a single candidate moves by itself, until there is a real choice.

        Raises:
            RuntimeError: if no job can ever move again (the rules of the shop rule this out; it names a bug).
        """
        count = kernels.settle(skip_forced, *self._shape(), self._machines, self._durations, *self._state(), self.candidates, self._cycle)
        if count < 0:
            raise RuntimeError(f"blocking shop {self.instance.name} is stuck at time {self.now} with {self.jobshop.n_jobs - int(self.clock[2])} jobs unfinished")
        return self.candidates.copy()

    def move(self, job: int) -> int:
        """Start the next operation of ``job`` now (with its swap cycle if its machine is held by a blocked job);
        returns how many jobs moved.

        Raises:
            ValueError: if ``job`` cannot move now (call :meth:`settle` first; the candidates are the legal moves).
        """
        if not (0 <= job < len(self.candidates)) or not self.candidates[job]:
            raise ValueError(f"invalid action {job!r}: the jobs that can move now are {np.flatnonzero(self.candidates).tolist()}")
        self.candidates[:] = False
        n_jobs, n_ops, _ = self._shape()
        return int(kernels.move(int(job), n_jobs, n_ops, self._machines, self._durations, *self._state(), self._cycle))

    def solution(self) -> BlockingJobShopSolution:
        """The schedule run so far (complete once :attr:`done`)."""
        return BlockingJobShopSolution(self.instance.name, self.start_times.copy(), list(self.instance.shutdowns))

    # ----------------------------------------------------------------------------------------------- internals
    def _shape(self) -> tuple[int, int, int]:
        return self.jobshop.n_jobs, self.jobshop.n_ops, self.jobshop.n_machines

    def _state(self) -> tuple[np.ndarray, ...]:
        """The state arrays in the order the kernels take them, from ``next_op`` to ``clock``."""
        return (
            self.next_op, self.held, self.busy_until, self.holder, self.down_start, self.down_end, self.down_count,
            self.start_times, self.end_times, self.machine_last, self.machine_pred, self.machine_work_left, self.clock,
        )
