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

if TYPE_CHECKING:
    from schedgym.envs.socdag.simulator import SocDagSimulator

#: Task status codes of :class:`SocDagSimulator` (``status`` array).
COMMITTED, DONE = 2, 3
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
#: Relation ids of the edges built by :func:`to_graph_batch`.
RELATIONS = ("parent_to_child", "child_to_parent", "job_to_task", "task_to_job", "pe_to_task", "task_to_pe")


class SocDagEncoder:
    """Encodes a :class:`SocDagSimulator` into fixed-size arrays (a ``gymnasium.spaces.Dict``; T = max_tasks,
    P = max_pes, E = 2 * max_tasks):

    * ``task_features`` float32 ``[T, len(TASK_FEATURES)]``, ``task_mask`` int8 ``[T]``
    * ``task_job`` int64 ``[T]``: job slot of each window task; ``task_pe`` int64 ``[T]``: its PE, -1 if uncommitted
    * ``job_features`` float32 ``[T, len(JOB_FEATURES)]``, ``job_mask`` int8 ``[T]`` (at most one job per task)
    * ``pe_features`` float32 ``[P, len(PE_FEATURES) + MAX_PE_TYPES]``, ``pe_mask`` int8 ``[P]``
    * ``edges`` int64 ``[E, 2]``: (parent slot, child slot) of DAG edges inside the window, -1 rows are padding
    * ``pair_features`` float32 ``[T, P, len(PAIR_FEATURES)]``
    * ``pair_mask`` int8 ``[T * P]``: legal (task slot, PE) actions, flattened task-major
    * ``eft_pe`` int64 ``[T]``: each ready task's earliest-finish legal PE (0 otherwise)
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

    def reset(self, sim: SocDagSimulator) -> None:
        """Prepare what stays fixed for the episode on ``sim.instance``; call before :meth:`encode`."""
        inst = sim.instance
        if inst.n_pes > self.max_pes or len(inst.soc.pe_type_names) > MAX_PE_TYPES:
            raise ValueError(
                f"instance {inst.name} has {inst.n_pes} PEs of {len(inst.soc.pe_type_names)} types; the encoding holds "
                f"at most {self.max_pes} PEs and {MAX_PE_TYPES} types - raise max_pes"
            )
        self.time_scale_us = float(max(sim.fastest_us.mean(), 1e-9))
        finite = np.isfinite(inst.expected_us)
        self._fastest = sim.fastest_us / self.time_scale_us
        self._mean_run = np.where(finite, inst.expected_us, 0.0).sum(axis=1) / finite.sum(axis=1) / self.time_scale_us
        self._rank = inst.upward_rank() / self.time_scale_us
        self._run = np.where(finite, inst.expected_us, 0.0) / self.time_scale_us
        self._job_size = np.diff(inst.job_first_task)
        self._pe_type = np.zeros((self.max_pes, MAX_PE_TYPES), dtype=np.float32)
        self._pe_type[np.arange(inst.n_pes), inst.soc.pe_types] = 1.0
        self._children: list[list[int]] = [[] for _ in range(inst.n_tasks)]
        for parent, child in inst.edges.tolist():
            self._children[parent].append(child)

    def window(self, sim: SocDagSimulator) -> list[int]:
        """Task ids in the window: the ready tasks (if they do not all fit: those with a legal PE first, so a legal
        action is always shown, then by their job's work left), then the other unfinished tasks of the oldest jobs."""
        tasks = sim.ready
        if len(tasks) > self.max_tasks:
            has_pe = sim.legal_pairs().any(axis=1)
            work_left = sim.job_work_left_us[sim.instance.task_job[tasks]]
            tasks = [tasks[i] for i in np.lexsort((work_left, ~has_pe))]
        tasks = tasks[: self.max_tasks]
        if len(tasks) < self.max_tasks:
            first = sim.instance.job_first_task
            seen = set(tasks)
            for job in sim.jobs_in_flight():
                for task in range(first[job], first[job + 1]):
                    if sim.status[task] != DONE and task not in seen:
                        tasks.append(task)
                        if len(tasks) == self.max_tasks:
                            return tasks
        return tasks

    def encode(self, sim: SocDagSimulator, tasks: list[int]) -> dict[str, np.ndarray]:
        """The observation of ``sim`` now, over the window ``tasks`` (from :meth:`window`)."""
        inst = sim.instance
        T, P = self.max_tasks, self.max_pes
        now, scale = sim.now_us, self.time_scale_us
        n = len(tasks)
        n_ready = min(len(sim.ready), T)
        ids = np.array(tasks, dtype=np.int64)

        task_features = np.zeros((T, len(TASK_FEATURES)), dtype=np.float32)
        task_features[:n, 0] = self._fastest[ids]
        task_features[:n, 1] = self._mean_run[ids]
        task_features[:n, 2] = self._rank[ids]
        task_features[:n_ready, 3] = 1.0
        status = sim.status[ids]
        task_features[:n, 4] = status == COMMITTED
        task_pe = np.full(T, -1, dtype=np.int64)
        task_pe[:n] = np.where(status == COMMITTED, sim.pe[ids], -1)

        pair_features = np.zeros((T, P, len(PAIR_FEATURES)), dtype=np.float32)
        pair_mask = np.zeros((T, P), dtype=np.int8)
        eft_pe = np.zeros(T, dtype=np.int64)
        if n_ready:
            ready = ids[:n_ready]
            finish_any = sim.expected_finish_us(ready.tolist(), legal_only=False)
            legal = sim.legal_pairs(ready.tolist())
            finish = np.where(legal, finish_any, np.inf)
            relative = np.where(legal, (finish - now) / scale, 0.0)
            best = (finish_any.min(axis=1, keepdims=True) - now) / scale
            pair_features[:n_ready, : inst.n_pes, 1] = relative
            pair_features[:n_ready, : inst.n_pes, 2] = np.where(legal, relative - best, 0.0)
            pair_features[:n_ready, : inst.n_pes, 3] = legal
            pair_mask[:n_ready, : inst.n_pes] = legal
            task_features[:n_ready, 5] = best[:, 0]
            eft_pe[:n_ready] = np.argmin(np.where(legal, finish, np.inf), axis=1)
        pair_features[:n, : inst.n_pes, 0] = self._run[ids]
        task_features[:n, 6] = sim.job_work_left_us[inst.task_job[ids]] / scale

        jobs, task_job = np.unique(inst.task_job[ids], return_inverse=True) if n else (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        job_features = np.zeros((T, len(JOB_FEATURES)), dtype=np.float32)
        if n:
            job_features[: len(jobs), 0] = (now - inst.arrival_us[jobs]) / scale
            job_features[: len(jobs), 1] = sim.job_work_left_us[jobs] / scale
            job_features[: len(jobs), 2] = np.array([sim.tasks_left[j] for j in jobs.tolist()]) / self._job_size[jobs]
        task_job_padded = np.zeros(T, dtype=np.int64)
        task_job_padded[:n] = task_job

        pe_features = np.zeros((P, len(PE_FEATURES) + MAX_PE_TYPES), dtype=np.float32)
        pe_features[: inst.n_pes, 0] = np.maximum(sim.pe_free_expected_us - now, 0.0) / scale
        pe_features[: inst.n_pes, 1] = sim.queue_length / sim.queue_capacity
        pe_features[:, len(PE_FEATURES) :] = self._pe_type

        slot = {task: i for i, task in enumerate(tasks)}
        edges = np.full((self.max_edges, 2), -1, dtype=np.int64)
        k = 0
        for i, task in enumerate(tasks):
            for child in self._children[task]:
                j = slot.get(child)
                if j is not None and k < self.max_edges:
                    edges[k] = (i, j)
                    k += 1
        masks = {
            "task_mask": np.arange(T) < n,
            "job_mask": np.arange(T) < len(jobs),
            "pe_mask": np.arange(P) < inst.n_pes,
        }
        return {
            "task_features": np.clip(task_features, -_CLIP, _CLIP),
            "task_mask": masks["task_mask"].astype(np.int8),
            "task_job": task_job_padded,
            "task_pe": task_pe,
            "job_features": np.clip(job_features, -_CLIP, _CLIP),
            "job_mask": masks["job_mask"].astype(np.int8),
            "pe_features": np.clip(pe_features, -_CLIP, _CLIP),
            "pe_mask": masks["pe_mask"].astype(np.int8),
            "edges": edges,
            "pair_features": np.clip(pair_features, -_CLIP, _CLIP),
            "pair_mask": pair_mask.reshape(-1),
            "eft_pe": eft_pe,
        }


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
