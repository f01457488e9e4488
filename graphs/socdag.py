"""socdag state -> padded tensors (the env's observation) -> one PyTorch Geometric graph per batch.

Nodes: a window of tasks, the jobs they belong to, and the PEs. The window holds every ready task first (in the
order they became ready; action slot ``i`` is window task ``i``), then the other unfinished tasks of the jobs in the
system, oldest job first, up to ``max_tasks`` (when more tasks are ready than fit, those a PE can take now come
first, and among them those whose job has the least work left). Edges: DAG edges between window tasks (both
directions), task <-> its job, and task <-> the PE it is committed to. Every (window task, PE) pair also has
features, from which the policy scores the actions.

Times are relative to the decision time and divided by the instance's time scale (mean fastest run time of a task),
so the features read alike on any workload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from numba import njit, prange

from schedgym.envs.socdag.kernels import ARRIVED, COMMITTED, N_READY, NOW, OLDEST, WAITING, has_event, slot_state, slot_tables

if TYPE_CHECKING:
    from schedgym.envs.socdag.instance import SocDagInstance
#: Per-task features, in column order.
TASK_FEATURES = (
    "fastest_run",  # fastest expected run time over the PEs
    "mean_run",  # mean expected run time over the supporting PEs
    "upward_rank",  # HEFT upward rank (critical path to the job's end)
    "ready",  # 1 if ready (selectable)
    "committed",  # 1 if queued or running on a PE
    "best_finish",  # earliest expected finish over the supporting PEs, busy ones included - now (ready tasks; 0 otherwise)
    "job_work_left",  # its job's work_left (below)
)
#: Per-job features.
JOB_FEATURES = (
    "age",  # now - arrival
    "work_left",  # fastest run times of its unfinished tasks, summed
    "tasks_left",  # unfinished tasks / its tasks
)
#: Per-PE features (then a one-hot of the PE type, MAX_PE_TYPES wide).
PE_FEATURES = (
    "busy_for",  # expected time until its queue is done
    "queue_fill",  # unfinished tasks in its queue / capacity
)
#: Per (task, PE) pair features.
PAIR_FEATURES = (
    "run",  # expected run time of the task on the PE (0 if unsupported)
    "finish",  # expected finish - now if committed now (0 if not legal)
    "finish_vs_best",  # finish - the task's best_finish (0 if not legal): what committing now costs over waiting for the best PE
    "legal",  # 1 if the commitment is allowed
)
MAX_PE_TYPES = 8
_CLIP = 100.0
_PE_TYPE_COLUMN = len(PE_FEATURES)  # first column of the PE type one-hot
#: Relation ids of the edges built by :func:`to_graph_batch`.
RELATIONS = ("parent_to_child", "child_to_parent", "job_to_task", "task_to_job", "pe_to_task", "task_to_pe")


class SocDagEncoding(NamedTuple):
    """What the encoding of one run keeps fixed (written by :meth:`SocDagEncoder.reset`); times in time-scale units.

    Attributes:
        time_scale_us: float ``[1]``: the mean fastest expected run time of a task.
        fastest / mean_run / rank: float ``[N]``: fastest and mean expected run time, HEFT upward rank.
        run: float ``[N, P]``: expected run time per (task, PE), 0 where the PE cannot run the task.
        job_size: int64 ``[J]``: tasks per job.
        pe_type: float32 ``[P, MAX_PE_TYPES]``: one-hot PE types (zero rows for padding PEs).
    """

    time_scale_us: np.ndarray
    fastest: np.ndarray
    mean_run: np.ndarray
    rank: np.ndarray
    run: np.ndarray
    job_size: np.ndarray
    pe_type: np.ndarray


class SocDagObservation(NamedTuple):
    """The arrays of one observation (fields as in :attr:`SocDagEncoder.observation_space`, plus ``action_mask``)."""

    task_features: np.ndarray
    task_mask: np.ndarray
    task_job: np.ndarray
    task_pe: np.ndarray
    job_features: np.ndarray
    job_mask: np.ndarray
    pe_features: np.ndarray
    pe_mask: np.ndarray
    edges: np.ndarray
    pair_features: np.ndarray
    pair_mask: np.ndarray
    eft_pe: np.ndarray
    action_mask: np.ndarray


class SocDagEncoder:
    """Encodes a socdag run into fixed-size arrays (a ``gymnasium.spaces.Dict``; T = max_tasks, P = max_pes,
    E = 2 * max_tasks):

    * ``task_features`` float32 ``[T, len(TASK_FEATURES)]``, ``task_mask`` int8 ``[T]``
    * ``task_job`` int64 ``[T]``: job slot of each window task; ``task_pe`` int64 ``[T]``: its PE, -1 if uncommitted
    * ``job_features`` float32 ``[T, len(JOB_FEATURES)]``, ``job_mask`` int8 ``[T]`` (at most one job per task)
    * ``pe_features`` float32 ``[P, len(PE_FEATURES) + MAX_PE_TYPES]``, ``pe_mask`` int8 ``[P]``
    * ``edges`` int64 ``[E, 2]``: (parent slot, child slot) of DAG edges inside the window, -1 rows are padding
    * ``pair_features`` float32 ``[T, P, len(PAIR_FEATURES)]``
    * ``pair_mask`` int8 ``[T * P]``: legal (task slot, PE) actions, flattened task-major
    * ``eft_pe`` int64 ``[T]``: each ready task's earliest-finish legal PE (0 otherwise)

    The env adds ``action_mask``: int8, ``pair_mask`` (``pair`` mode) or its any-PE reduction per task (``order``
    mode), then the wait action. The compiled :func:`write_observation` writes all of it, for one run or (from
    the batched engine) for each slot of a batch.
    """

    def __init__(self, max_tasks: int, max_pes: int) -> None:
        self.max_tasks, self.max_pes = int(max_tasks), int(max_pes)
        self.max_edges = 2 * self.max_tasks

    @property
    def observation_space(self) -> spaces.Dict:
        t, p, e = self.max_tasks, self.max_pes, self.max_edges
        box = lambda shape: spaces.Box(-_CLIP, _CLIP, shape, np.float32)  # noqa: E731
        return spaces.Dict(
            {
                "task_features": box((t, len(TASK_FEATURES))),
                "task_mask": spaces.Box(0, 1, (t,), np.int8),
                "task_job": spaces.Box(0, t - 1, (t,), np.int64),
                "task_pe": spaces.Box(-1, p - 1, (t,), np.int64),
                "job_features": box((t, len(JOB_FEATURES))),
                "job_mask": spaces.Box(0, 1, (t,), np.int8),
                "pe_features": box((p, len(PE_FEATURES) + MAX_PE_TYPES)),
                "pe_mask": spaces.Box(0, 1, (p,), np.int8),
                "edges": spaces.Box(-1, t - 1, (e, 2), np.int64),
                "pair_features": box((t, p, len(PAIR_FEATURES))),
                "pair_mask": spaces.Box(0, 1, (t * p,), np.int8),
                "eft_pe": spaces.Box(0, p - 1, (t,), np.int64),
            }
        )

    def n_actions(self, mode: str) -> int:
        """Actions of the env in ``mode`` (``pair``: one per (task slot, PE); ``order``: one per task slot), the
        wait action (the last) included."""
        return self.max_tasks * (self.max_pes if mode == "pair" else 1) + 1

    def allocate(self, prefix: tuple[int, ...], n_tasks: int, n_jobs: int, mode: str) -> tuple[SocDagEncoding, SocDagObservation, np.ndarray]:
        """Empty (encoding constants, observation arrays, window) for runs of up to ``n_tasks`` tasks and ``n_jobs``
        jobs, with leading axes ``prefix``. The window is int64 ``[T]``: the task id in each slot, -1 past the end."""
        T, P = self.max_tasks, self.max_pes
        encoding = SocDagEncoding(
            time_scale_us=np.ones(prefix + (1,)),
            fastest=np.zeros(prefix + (n_tasks,)),
            mean_run=np.zeros(prefix + (n_tasks,)),
            rank=np.zeros(prefix + (n_tasks,)),
            run=np.zeros(prefix + (n_tasks, P)),
            job_size=np.ones(prefix + (n_jobs,), dtype=np.int64),
            pe_type=np.zeros(prefix + (P, MAX_PE_TYPES), dtype=np.float32),
        )
        space = self.observation_space.spaces
        padding = {"task_pe": -1, "edges": -1}  # what padding rows hold
        observation = SocDagObservation(
            **{key: np.full(prefix + box.shape, padding.get(key, 0), dtype=box.dtype) for key, box in space.items()},
            action_mask=np.zeros(prefix + (self.n_actions(mode),), dtype=np.int8),
        )
        return encoding, observation, np.full(prefix + (T,), -1, dtype=np.int64)

    def reset(self, encoding: SocDagEncoding, instance: SocDagInstance) -> float:
        """Write the constants of one run on ``instance`` into ``encoding`` (one run's arrays); returns the time
        scale (us).

        Raises:
            ValueError: if the instance has more PEs or PE types than the encoding holds.
        """
        if instance.n_pes > self.max_pes or len(instance.soc.pe_type_names) > MAX_PE_TYPES:
            raise ValueError(
                f"instance {instance.name} has {instance.n_pes} PEs of {len(instance.soc.pe_type_names)} types; the encoding holds "
                f"at most {self.max_pes} PEs and {MAX_PE_TYPES} types - raise max_pes"
            )
        n, n_pes = instance.n_tasks, instance.n_pes
        fastest_us = instance.expected_us.min(axis=1)
        scale = float(max(fastest_us.mean(), 1e-9))
        finite = np.isfinite(instance.expected_us)
        encoding.time_scale_us[0] = scale
        encoding.fastest[:n] = fastest_us / scale
        encoding.mean_run[:n] = instance.mean_run_us() / scale
        encoding.rank[:n] = instance.upward_rank() / scale
        encoding.run[:n] = 0.0
        encoding.run[:n, :n_pes] = np.where(finite, instance.expected_us, 0.0) / scale
        encoding.job_size[: instance.n_jobs] = np.diff(instance.job_first_task)
        encoding.pe_type[:] = 0.0
        encoding.pe_type[np.arange(n_pes), instance.soc.pe_types] = 1.0
        return scale


@njit(cache=True)
def write_observation(tables, state, encoding, queue_capacity, pair_mode, late, obs, window, slot_of_task):
    """Write the observation of one run now into ``obs`` and its window (task id per slot) into ``window``.

    The window holds the ready tasks first (in the order they became ready; if they do not all fit: those with a
    legal PE first, then by their job's work left), then the other unfinished tasks of the jobs in the system,
    oldest job first. ``slot_of_task`` is int64 scratch ``[N]``, all -1, and is left so.
    """
    T, P = window.shape[0], obs.pe_mask.shape[0]
    n_pes = tables.sizes[1]
    now, scale = state.clock_us[NOW], encoding.time_scale_us[0]
    has_room = np.empty(n_pes, dtype=np.bool_)
    for p in range(n_pes):
        has_room[p] = state.queue_length[p] < queue_capacity
    # the previous observation's extent: rows past it are still zero (or -1) from before
    shown_before, jobs_before, edges_before = 0, 0, 0
    while shown_before < T and window[shown_before] >= 0:
        shown_before += 1
    while jobs_before < T and obs.job_mask[jobs_before]:
        jobs_before += 1
    while edges_before < obs.edges.shape[0] and obs.edges[edges_before, 0] >= 0:
        edges_before += 1

    # the window
    n_ready_all = state.counts[N_READY]
    ready = state.ready[:n_ready_all]
    if n_ready_all > T:
        work_left = np.empty(n_ready_all)
        has_pe = np.zeros(n_ready_all, dtype=np.bool_)
        for i in range(n_ready_all):
            work_left[i] = state.job_work_left_us[tables.task_job[ready[i]]]
            for p in range(n_pes):
                if tables.supported[ready[i], p] and has_room[p]:
                    has_pe[i] = True
        by_work = np.argsort(work_left, kind="mergesort")
        n = 0
        for first_pass in (True, False):
            for i in by_work:
                if has_pe[i] == first_pass and n < T:
                    window[n] = ready[i]
                    n += 1
        n_ready = T
    else:
        window[:n_ready_all] = ready
        n_ready = n = n_ready_all
        oldest = state.counts[OLDEST]
        while oldest < state.counts[ARRIVED] and state.tasks_left[oldest] == 0:
            oldest += 1
        state.counts[OLDEST] = oldest
        for job in range(oldest, state.counts[ARRIVED]):
            if n == T:
                break
            for task in range(tables.job_first_task[job], tables.job_first_task[job + 1]):
                status = state.status[task]
                if status == WAITING or status == COMMITTED:
                    window[n] = task
                    n += 1
                    if n == T:
                        break
    window[n:] = -1

    # tasks and their jobs (job slots in job order)
    obs.task_features[:shown_before] = 0.0
    obs.task_pe[:shown_before] = -1
    obs.task_job[:shown_before] = 0
    obs.job_features[:jobs_before] = 0.0
    obs.pair_features[:shown_before] = 0.0
    obs.pair_mask[: shown_before * P] = 0
    obs.eft_pe[:shown_before] = 0
    distinct = np.empty(n, dtype=np.int64)  # the jobs shown, in job order
    n_jobs_shown = 0
    for i in range(n):
        job = tables.task_job[window[i]]
        at = np.searchsorted(distinct[:n_jobs_shown], job)
        if at == n_jobs_shown or distinct[at] != job:
            distinct[at + 1 : n_jobs_shown + 1] = distinct[at:n_jobs_shown].copy()
            distinct[at] = job
            n_jobs_shown += 1
    distinct = distinct[:n_jobs_shown]
    for k in range(n_jobs_shown):
        job = distinct[k]
        obs.job_features[k, 0] = min(max((now - tables.arrival_us[job]) / scale, -_CLIP), _CLIP)
        obs.job_features[k, 1] = min(max(state.job_work_left_us[job] / scale, -_CLIP), _CLIP)
        obs.job_features[k, 2] = state.tasks_left[job] / encoding.job_size[job]
    for i in range(n):
        task = window[i]
        slot_of_task[task] = i
        features = obs.task_features[i]
        features[0] = min(encoding.fastest[task], _CLIP)
        features[1] = min(encoding.mean_run[task], _CLIP)
        features[2] = min(encoding.rank[task], _CLIP)
        features[3] = 1.0 if i < n_ready else 0.0
        committed = state.status[task] == COMMITTED
        features[4] = 1.0 if committed else 0.0
        if committed:
            obs.task_pe[i] = state.pe[task]
        features[6] = min(max(state.job_work_left_us[tables.task_job[task]] / scale, -_CLIP), _CLIP)
        obs.task_job[i] = np.searchsorted(distinct, tables.task_job[task])
        for p in range(n_pes):
            obs.pair_features[i, p, 0] = min(encoding.run[task, p], _CLIP)
        if i < n_ready:  # finish times of committing it now, on every PE that can run it (busy ones: after their queue)
            best, eft, eft_pe = np.inf, np.inf, 0
            for p in range(n_pes):
                if tables.supported[task, p]:
                    start = max(max(state.pe_free_expected_us[p], now), state.data_ready_us[task, p])
                    best = min(best, start + tables.expected_us[task, p])
            best_relative = (best - now) / scale
            features[5] = min(max(best_relative, -_CLIP), _CLIP)
            for p in range(n_pes):
                if tables.supported[task, p] and has_room[p]:
                    start = max(max(state.pe_free_expected_us[p], now), state.data_ready_us[task, p])
                    finish = start + tables.expected_us[task, p]
                    relative = (finish - now) / scale
                    obs.pair_features[i, p, 1] = min(max(relative, -_CLIP), _CLIP)
                    obs.pair_features[i, p, 2] = min(max(relative - best_relative, -_CLIP), _CLIP)
                    obs.pair_features[i, p, 3] = 1.0
                    obs.pair_mask[i * P + p] = 1
                    if finish < eft:
                        eft, eft_pe = finish, p
            obs.eft_pe[i] = eft_pe

    # PEs
    obs.pe_features[:] = 0.0
    for p in range(n_pes):
        obs.pe_features[p, 0] = min(max(state.pe_free_expected_us[p] - now, 0.0) / scale, _CLIP)
        obs.pe_features[p, 1] = state.queue_length[p] / queue_capacity
    obs.pe_features[:, _PE_TYPE_COLUMN:] = encoding.pe_type

    # DAG edges inside the window
    obs.edges[:edges_before] = -1
    k = 0
    for i in range(n):
        task = window[i]
        for e in range(tables.out_start[task], tables.out_start[task + 1]):
            j = slot_of_task[tables.edge_child[tables.out_edges[e]]]
            if j >= 0 and k < obs.edges.shape[0]:
                obs.edges[k, 0] = i
                obs.edges[k, 1] = j
                k += 1
    for i in range(n):
        slot_of_task[window[i]] = -1

    for i in range(T):
        obs.task_mask[i] = i < n
        obs.job_mask[i] = i < n_jobs_shown
    for p in range(P):
        obs.pe_mask[p] = p < n_pes
    wait_action = obs.action_mask.shape[0] - 1
    if pair_mode:
        obs.action_mask[:wait_action] = obs.pair_mask
    else:
        for i in range(T):
            obs.action_mask[i] = obs.pair_mask[i * P : (i + 1) * P].max()
    obs.action_mask[wait_action] = late and has_event(tables, state)


@njit(cache=True, parallel=True)
def write_batch_observations(slots, tables, state, encoding, queue_capacity, pair_mode, late, obs, window, slot_of_task):
    """:func:`write_observation` for each slot in ``slots`` of a batch (arrays with a leading ``[B]`` axis)."""
    for k in prange(len(slots)):
        b = slots[k]
        write_observation(
            slot_tables(tables, b), slot_state(state, b), _slot_encoding(encoding, b), queue_capacity, pair_mode, late,
            _slot_observation(obs, b), window[b], slot_of_task[b],
        )


@njit(cache=True)
def _slot_encoding(encoding, b):
    return SocDagEncoding(
        encoding.time_scale_us[b], encoding.fastest[b], encoding.mean_run[b], encoding.rank[b], encoding.run[b],
        encoding.job_size[b], encoding.pe_type[b],
    )


@njit(cache=True)
def _slot_observation(obs, b):
    return SocDagObservation(
        obs.task_features[b], obs.task_mask[b], obs.task_job[b], obs.task_pe[b], obs.job_features[b], obs.job_mask[b],
        obs.pe_features[b], obs.pe_mask[b], obs.edges[b], obs.pair_features[b], obs.pair_mask[b], obs.eft_pe[b],
        obs.action_mask[b],
    )


class SocDagGraphBatch(NamedTuple):
    """A batch of B socdag states as one graph. Node ids: real tasks of every state, then real jobs, then real PEs.

    Attributes:
        x_task / x_job / x_pe: node features of each kind.
        edge_index: int64 ``[2, E]``; edge_type: int64 ``[E]`` (index into RELATIONS).
        task_batch / job_batch / pe_batch: state of each node.
        task_slot: int64 ``[B, T]``: combined node id of each window slot (0 for padding).
        pe_slot: int64 ``[B, P]``: combined node id of each PE slot.
        batch_size: B.
    """

    x_task: torch.Tensor
    x_job: torch.Tensor
    x_pe: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    task_batch: torch.Tensor
    job_batch: torch.Tensor
    pe_batch: torch.Tensor
    task_slot: torch.Tensor
    pe_slot: torch.Tensor
    batch_size: int


def _compact_ids(mask: torch.Tensor, offset: int) -> tuple[torch.Tensor, int]:
    """Flat padded index -> compact node id (+ offset), and the number of real nodes."""
    flat = mask.reshape(-1)
    return torch.cumsum(flat.long(), 0) - 1 + offset, int(flat.sum())


def to_graph_batch(obs: dict[str, torch.Tensor]) -> SocDagGraphBatch:
    """Padded observations with a batch dimension (integer fields may arrive as floats) -> one graph of real nodes."""
    task_mask, job_mask, pe_mask = obs["task_mask"] != 0, obs["job_mask"] != 0, obs["pe_mask"] != 0
    batch_size, n_slots = task_mask.shape
    n_pe_slots = pe_mask.shape[1]
    device = task_mask.device
    task_id, n_task = _compact_ids(task_mask, 0)
    job_id, n_job = _compact_ids(job_mask, n_task)
    pe_id, _ = _compact_ids(pe_mask, n_task + n_job)
    rows = torch.arange(batch_size, device=device)[:, None]
    task_base, pe_base = rows * n_slots, rows * n_pe_slots

    edges = obs["edges"].long()
    real = edges[..., 0] >= 0
    parent = task_id[(task_base + edges[..., 0].clamp(min=0))[real]]
    child = task_id[(task_base + edges[..., 1].clamp(min=0))[real]]
    slots = torch.arange(n_slots, device=device)[None, :].expand(batch_size, -1)
    member_task = task_id[(task_base + slots)[task_mask]]
    member_job = job_id[(task_base + obs["task_job"].long())[task_mask]]
    task_pe = obs["task_pe"].long()
    committed = (task_pe >= 0) & task_mask
    run_task = task_id[(task_base + slots)[committed]]
    run_pe = pe_id[(pe_base + task_pe.clamp(min=0))[committed]]

    sources = [parent, child, member_job, member_task, run_pe, run_task]
    targets = [child, parent, member_task, member_job, run_task, run_pe]
    return SocDagGraphBatch(
        x_task=obs["task_features"][task_mask].float(),
        x_job=obs["job_features"][job_mask].float(),
        x_pe=obs["pe_features"][pe_mask].float(),
        edge_index=torch.stack([torch.cat(sources), torch.cat(targets)]),
        edge_type=torch.cat([torch.full_like(s, r) for r, s in enumerate(sources)]),
        task_batch=rows.expand(-1, n_slots)[task_mask],
        job_batch=rows.expand(-1, job_mask.shape[1])[job_mask],
        pe_batch=rows.expand(-1, n_pe_slots)[pe_mask],
        task_slot=torch.where(task_mask, task_id.reshape(batch_size, n_slots), 0),
        pe_slot=torch.where(pe_mask, pe_id.reshape(batch_size, n_pe_slots), n_task + n_job),
        batch_size=batch_size,
    )
