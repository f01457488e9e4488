"""The socdag instance model: an SoC spec, a latency table, application DAGs and a workload of arriving jobs.

Times are in microseconds (``_us``), data volumes in bytes, bandwidths in bytes per microsecond (= MB/s).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
from numba import njit


@dataclass(frozen=True, eq=False)
class SocSpec:
    """A heterogeneous system-on-chip.

    Attributes:
        name: spec name.
        pe_type_names: names of the processing-element types (``big``, ``little``, ``fft``, ...).
        pe_types: int array ``[n_pes]``, the type index of every PE.
        bandwidth_bytes_per_us: float array ``[n_pes, n_pes]``, interconnect bandwidth from PE ``p`` to PE ``q``;
            data between tasks on the same PE moves for free.
    """

    name: str
    pe_type_names: tuple[str, ...]
    pe_types: np.ndarray
    bandwidth_bytes_per_us: np.ndarray

    def __post_init__(self) -> None:
        pe_types = np.ascontiguousarray(self.pe_types, dtype=np.int64)
        bandwidth = np.ascontiguousarray(self.bandwidth_bytes_per_us, dtype=np.float64)
        n_pes = len(pe_types)
        if n_pes == 0 or pe_types.min() < 0 or pe_types.max() >= len(self.pe_type_names):
            raise ValueError(f"SoC {self.name!r}: every PE needs a type index in [0, {len(self.pe_type_names)})")
        if bandwidth.shape != (n_pes, n_pes) or (bandwidth <= 0).any():
            raise ValueError(f"SoC {self.name!r}: bandwidth must be a positive [{n_pes}, {n_pes}] matrix, got {bandwidth.shape}")
        for array in (pe_types, bandwidth):
            array.setflags(write=False)
        object.__setattr__(self, "pe_types", pe_types)
        object.__setattr__(self, "bandwidth_bytes_per_us", bandwidth)

    @property
    def n_pes(self) -> int:
        return len(self.pe_types)

    @property
    def pe_names(self) -> list[str]:
        """``big0``, ``big1``, ``fft0``, ...: the type name and the PE's index within its type."""
        seen: dict[int, int] = {}
        names = []
        for t in self.pe_types.tolist():
            names.append(f"{self.pe_type_names[t]}{seen.get(t, 0)}")
            seen[t] = seen.get(t, 0) + 1
        return names

    @classmethod
    def uniform(cls, name: str, pe_type_names: tuple[str, ...], pe_counts: dict[str, int], bandwidth_bytes_per_us: float) -> "SocSpec":
        """A SoC with ``pe_counts[type]`` PEs of each type and the same bandwidth between every pair."""
        pe_types = [pe_type_names.index(t) for t, count in pe_counts.items() for _ in range(count)]
        n = len(pe_types)
        return cls(name, pe_type_names, np.array(pe_types), np.full((n, n), float(bandwidth_bytes_per_us)))


@dataclass(frozen=True, eq=False)
class TaskGraph:
    """One application: a DAG of typed tasks with a data volume on every edge.

    Attributes:
        name: application name (``wifi_tx``).
        task_types: int array ``[n_tasks]``, index into the instance's task types.
        edges: int array ``[n_edges, 2]``, (parent, child) pairs, task indices local to this graph.
        data_bytes: float array ``[n_edges]``, bytes the parent sends to the child.
    """

    name: str
    task_types: np.ndarray
    edges: np.ndarray
    data_bytes: np.ndarray

    def __post_init__(self) -> None:
        task_types = np.ascontiguousarray(self.task_types, dtype=np.int64)
        edges = np.ascontiguousarray(self.edges, dtype=np.int64).reshape(-1, 2)
        data_bytes = np.ascontiguousarray(self.data_bytes, dtype=np.float64)
        n = len(task_types)
        if n == 0:
            raise ValueError(f"application {self.name!r} has no task")
        if len(data_bytes) != len(edges) or (data_bytes < 0).any():
            raise ValueError(f"application {self.name!r}: one non-negative data volume per edge is needed")
        if len(edges) and (edges.min() < 0 or edges.max() >= n or (edges[:, 0] == edges[:, 1]).any()):
            raise ValueError(f"application {self.name!r}: edges must join two different tasks in [0, {n})")
        if len(topological_order(n, edges)) != n:
            raise ValueError(f"application {self.name!r}: the task graph has a cycle")
        for array in (task_types, edges, data_bytes):
            array.setflags(write=False)
        object.__setattr__(self, "task_types", task_types)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "data_bytes", data_bytes)

    @property
    def n_tasks(self) -> int:
        return len(self.task_types)


def topological_order(n_tasks: int, edges: np.ndarray) -> list[int]:
    """Kahn's order of a DAG (lowest index first among the ready); shorter than ``n_tasks`` if there is a cycle."""
    indegree = np.bincount(edges[:, 1], minlength=n_tasks) if len(edges) else np.zeros(n_tasks, dtype=np.int64)
    children: list[list[int]] = [[] for _ in range(n_tasks)]
    for parent, child in edges.tolist():
        children[parent].append(child)
    ready = [t for t in range(n_tasks) if indegree[t] == 0]
    order = []
    indegree = indegree.tolist()
    while ready:
        task = heapq.heappop(ready)
        order.append(task)
        for child in children[task]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    return order


@dataclass(frozen=True, eq=False)
class SocDagInstance:
    """A workload: jobs (copies of application DAGs) arriving on a SoC.

    A task of type ``k`` runs on PE ``p`` for ``latency_us[k, pe_types[p]]`` microseconds in expectation (NaN: the
    PE type cannot run it) times the task's ``noise_factor`` (1 without noise). The factor is drawn once per task
    when the instance is made, so every solver faces the same realisation; online solvers see only the expected
    times until a task finishes. A child may start on PE ``q`` once every parent (on ``p``) has finished and its
    data has moved: ``data_bytes / bandwidth[p, q]`` later, or at once when ``p == q``.

    Attributes:
        name: instance name.
        soc: the SoC.
        task_type_names: names of the task types.
        latency_us: float array ``[n_task_types, n_pe_types]``, expected run time; NaN = unsupported.
        applications: the application DAGs jobs are drawn from.
        job_app: int array ``[n_jobs]``, application of every job.
        arrival_us: float array ``[n_jobs]``, non-decreasing arrival times.
        noise_factor: float array ``[n_tasks]`` (all tasks of all jobs, job by job), actual / expected run time.
        streaming: True for a stream of arriving jobs (objective: mean job duration), False for one static DAG
            (objective: makespan).
        noise_rel_std: relative std the noise factors were drawn with (for reports).
        group: the class the instance is reported under (``static``, ``rate0.9-noise0.2``).
        optimum_us: proven optimal makespan (static instances), if known.
        reference: where it comes from.

    Derived (flattened over all jobs): ``task_job`` / ``task_type`` / ``task_local`` ``[n_tasks]``, ``job_first_task``
    ``[n_jobs + 1]``, ``edges`` ``[n_edges, 2]`` and ``edge_bytes`` ``[n_edges]`` in global task indices,
    ``expected_us`` and ``actual_us`` ``[n_tasks, n_pes]`` (inf where unsupported).
    """

    name: str
    soc: SocSpec
    task_type_names: tuple[str, ...]
    latency_us: np.ndarray
    applications: tuple[TaskGraph, ...]
    job_app: np.ndarray
    arrival_us: np.ndarray
    noise_factor: np.ndarray | None = None
    streaming: bool = False
    noise_rel_std: float = 0.0
    group: str = "static"
    optimum_us: float | None = None
    reference: str = ""
    task_job: np.ndarray = field(init=False, repr=False)
    task_type: np.ndarray = field(init=False, repr=False)
    task_local: np.ndarray = field(init=False, repr=False)
    job_first_task: np.ndarray = field(init=False, repr=False)
    edges: np.ndarray = field(init=False, repr=False)
    edge_bytes: np.ndarray = field(init=False, repr=False)
    expected_us: np.ndarray = field(init=False, repr=False)
    actual_us: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        latency = np.asarray(self.latency_us, dtype=np.float64)
        job_app = np.asarray(self.job_app, dtype=np.int64)
        arrival = np.asarray(self.arrival_us, dtype=np.float64)
        if latency.shape != (len(self.task_type_names), len(self.soc.pe_type_names)):
            raise ValueError(
                f"instance {self.name!r}: latency table is {latency.shape}, expected "
                f"[{len(self.task_type_names)} task types, {len(self.soc.pe_type_names)} PE types]"
            )
        if (latency[~np.isnan(latency)] < 0).any():
            raise ValueError(f"instance {self.name!r}: latencies must be >= 0 (NaN marks an unsupported pair)")
        if len(job_app) == 0 or len(arrival) != len(job_app) or job_app.min() < 0 or job_app.max() >= len(self.applications):
            raise ValueError(f"instance {self.name!r}: need one application index and one arrival time per job")
        if (arrival < 0).any() or (np.diff(arrival) < 0).any():
            raise ValueError(f"instance {self.name!r}: arrival times must be >= 0 and non-decreasing")
        for app in self.applications:
            if app.task_types.max() >= len(self.task_type_names):
                raise ValueError(f"instance {self.name!r}: application {app.name!r} uses an unknown task type")
            unsupported = np.isnan(latency[app.task_types]).all(axis=1)
            if unsupported.any():
                names = sorted({self.task_type_names[k] for k in app.task_types[unsupported]})
                raise ValueError(f"instance {self.name!r}: no PE type can run task type(s) {names} of {app.name!r}")

        sizes = np.array([self.applications[a].n_tasks for a in job_app])
        first = np.concatenate([[0], np.cumsum(sizes)])
        n_tasks = int(first[-1])
        noise = np.ones(n_tasks) if self.noise_factor is None else np.asarray(self.noise_factor, dtype=np.float64)
        if noise.shape != (n_tasks,) or (noise <= 0).any():
            raise ValueError(f"instance {self.name!r}: noise_factor must hold {n_tasks} positive factors")
        apps = [self.applications[a] for a in job_app]
        task_job = np.repeat(np.arange(len(job_app)), sizes)
        task_type = np.concatenate([app.task_types for app in apps])
        task_local = np.concatenate([np.arange(app.n_tasks) for app in apps])
        edges = np.concatenate([app.edges + first[j] for j, app in enumerate(apps)]).astype(np.int64).reshape(-1, 2)
        edge_bytes = np.concatenate([app.data_bytes for app in apps])
        expected = latency[task_type][:, self.soc.pe_types]
        expected = np.where(np.isnan(expected), np.inf, expected)
        derived = {
            "latency_us": latency, "job_app": job_app, "arrival_us": arrival, "noise_factor": noise,
            "task_job": task_job, "task_type": task_type, "task_local": task_local, "job_first_task": first,
            "edges": edges, "edge_bytes": edge_bytes, "expected_us": expected, "actual_us": expected * noise[:, None],
        }
        for key, array in derived.items():
            array.setflags(write=False)
            object.__setattr__(self, key, array)

    @property
    def n_jobs(self) -> int:
        return len(self.job_app)

    @property
    def n_tasks(self) -> int:
        return len(self.task_job)

    @property
    def n_pes(self) -> int:
        return self.soc.n_pes

    def supported(self) -> np.ndarray:
        """bool ``[n_tasks, n_pes]``: which PE can run which task."""
        return np.isfinite(self.expected_us)

    def transfer_us(self, data_bytes: float | np.ndarray, from_pe: int | np.ndarray, to_pe: int | np.ndarray) -> np.ndarray:
        """Time to move ``data_bytes`` from ``from_pe`` to ``to_pe`` (0 on the same PE); broadcasts."""
        from_pe, to_pe = np.asarray(from_pe), np.asarray(to_pe)
        time = np.asarray(data_bytes) / self.soc.bandwidth_bytes_per_us[from_pe, to_pe]
        return np.where(from_pe == to_pe, 0.0, time)

    def mean_transfer_us(self, data_bytes: np.ndarray) -> np.ndarray:
        """Transfer time averaged over ordered pairs of distinct PEs (HEFT's mean communication cost)."""
        n = self.n_pes
        if n == 1:
            return np.zeros_like(np.asarray(data_bytes, dtype=float))
        inverse = 1.0 / self.soc.bandwidth_bytes_per_us
        mean_inverse = (inverse.sum() - np.trace(inverse)) / (n * (n - 1))
        return np.asarray(data_bytes, dtype=float) * mean_inverse

    def upward_rank(self) -> np.ndarray:
        """HEFT's upward rank ``[n_tasks]`` (expected times): mean run time over the PEs that support the task
        plus the longest (mean transfer + rank) over its children. Rounded to 1e-9 so ties break by index."""
        children = np.argsort(self.edges[:, 0], kind="stable")  # edges grouped by parent, in edge order
        first = np.concatenate(([0], np.cumsum(np.bincount(self.edges[:, 0], minlength=self.n_tasks))))
        rank = _upward_rank(self.mean_run_us(), first, self.edges[children, 1], self.mean_transfer_us(self.edge_bytes)[children])
        return np.round(rank, 9)

    def downward_rank(self) -> np.ndarray:
        """CPoP's downward rank ``[n_tasks]``: the longest (rank + mean run + mean transfer) over the parents."""
        mean_run = self.mean_run_us()
        rank = np.zeros(self.n_tasks)
        transfer = self.mean_transfer_us(self.edge_bytes)
        incoming: list[list[int]] = [[] for _ in range(self.n_tasks)]
        for e, child in enumerate(self.edges[:, 1].tolist()):
            incoming[child].append(e)
        for task in topological_order(self.n_tasks, self.edges):
            for e in incoming[task]:
                parent = self.edges[e, 0]
                rank[task] = max(rank[task], rank[parent] + mean_run[parent] + transfer[e])
        return np.round(rank, 9)

    def mean_run_us(self) -> np.ndarray:
        """Expected run time ``[n_tasks]`` averaged over the PEs that support each task."""
        finite = np.isfinite(self.expected_us)
        return np.where(finite, self.expected_us, 0.0).sum(axis=1) / finite.sum(axis=1)

    def __repr__(self) -> str:
        kind = "streaming" if self.streaming else "static"
        return f"SocDagInstance({self.name!r}, {kind}, {self.n_jobs} jobs, {self.n_tasks} tasks, {self.n_pes} PEs)"


@njit(cache=True)
def _upward_rank(mean_run_us, first_child_edge, child, transfer_us):
    """The upward-rank recursion, children before parents (a reverse Kahn order); task t's children are
    ``child[first_child_edge[t]:first_child_edge[t + 1]]`` with the transfer times ``transfer_us`` of those edges."""
    n = len(mean_run_us)
    indegree = np.zeros(n, dtype=np.int64)
    for e in range(len(child)):
        indegree[child[e]] += 1
    order = np.empty(n, dtype=np.int64)
    head, tail = 0, 0
    for t in range(n):
        if indegree[t] == 0:
            order[tail] = t
            tail += 1
    while head < tail:
        task = order[head]
        head += 1
        for e in range(first_child_edge[task], first_child_edge[task + 1]):
            indegree[child[e]] -= 1
            if indegree[child[e]] == 0:
                order[tail] = child[e]
                tail += 1
    rank = mean_run_us.copy()
    for k in range(n - 1, -1, -1):
        task = order[k]
        longest = 0.0
        for e in range(first_child_edge[task], first_child_edge[task + 1]):
            longest = max(longest, transfer_us[e] + rank[child[e]])
        rank[task] += longest
    return rank
