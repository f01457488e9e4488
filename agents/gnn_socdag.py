"""The socdag actor-critic network: a relational GNN over tasks, jobs and PEs, one score per (task, PE) pair.

Size-agnostic like the job-shop network: every score comes from per-node embeddings and per-pair features, so one
set of weights serves any window size, job mix or number of PEs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.utils import scatter

from schedgym.agents.gnn import GnnConfig, RelationalMeanConv, mlp, relation_slots
from schedgym.envs.socdag.env import BINDINGS, MODES
from schedgym.graphs.socdag import JOB_FEATURES, MAX_PE_TYPES, PAIR_FEATURES, PE_FEATURES, RELATIONS, TASK_FEATURES, to_graph_batch

_OBSERVATION_KEYS = ("task_features", "task_mask", "task_job", "task_pe", "job_features", "job_mask", "pe_features", "pe_mask", "edges", "pair_features", "pair_mask", "eft_pe")


def check_observation(obs: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the problem if ``obs`` is not a batch of socdag observations."""
    hint = "build observations with schedgym.graphs.socdag.SocDagEncoder (SocDagEnv does) and add a batch dimension"
    if not isinstance(obs, dict) or set(_OBSERVATION_KEYS) - set(obs):
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ValueError(f"observation has keys {keys}, expected {sorted(_OBSERVATION_KEYS)}; {hint}")
    widths = {"task_features": len(TASK_FEATURES), "job_features": len(JOB_FEATURES), "pe_features": len(PE_FEATURES) + MAX_PE_TYPES, "pair_features": len(PAIR_FEATURES)}
    for key, width in widths.items():
        if obs[key].dim() < 3 or obs[key].shape[-1] != width:
            raise ValueError(f"observation[{key!r}] has shape {tuple(obs[key].shape)}, expected [batch, ..., {width}]; {hint}")
    n_tasks, n_pes = obs["task_features"].shape[1], obs["pe_features"].shape[1]
    if obs["pair_features"].shape[1:3] != (n_tasks, n_pes) or obs["pair_mask"].shape[1] != n_tasks * n_pes:
        raise ValueError(f"observation fields disagree on the window ({n_tasks} tasks) or PE count ({n_pes}); {hint}")


class SocDagGnn(nn.Module):
    """obs (padded, batch first) -> (logits, value ``[B]``); logits are ``[B, T * P + 1]`` in ``pair`` mode (one
    per (window slot, PE)) and ``[B, T + 1]`` in ``order`` mode (each slot's score at its earliest-finish PE); the
    last logit is the wait action's.

    Task, job and PE nodes get their own encoders, then ``n_layers`` residual relational rounds over
    :data:`schedgym.graphs.socdag.RELATIONS`. A pair's score is an MLP of the task's and the PE's embeddings, the
    pair features and the mean task embedding; the wait score and the value are MLPs of the mean task, job and PE
    embeddings. ``binding`` is the env binding (``early`` or ``late``) the policy is trained and run with.
    """

    def __init__(self, config: GnnConfig | None = None, mode: str = "order", binding: str = "early") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown socdag action mode {mode!r}; choose one of {MODES}")
        if binding not in BINDINGS:
            raise ValueError(f"unknown socdag binding {binding!r}; choose one of {BINDINGS}")
        self.config = config or GnnConfig()
        self.mode, self.binding = mode, binding
        h = self.config.hidden_dim
        self.task_encoder = nn.Sequential(nn.Linear(len(TASK_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.job_encoder = nn.Sequential(nn.Linear(len(JOB_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.pe_encoder = nn.Sequential(nn.Linear(len(PE_FEATURES) + MAX_PE_TYPES, h), nn.ReLU(), nn.Linear(h, h))
        self.n_relations = len(RELATIONS)
        self.convs = nn.ModuleList(RelationalMeanConv(h, h, self.n_relations) for _ in range(self.config.n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(self.config.n_layers))
        self.actor = mlp(3 * h + len(PAIR_FEATURES), self.config.head_hidden_dim, 1)
        self.waiter = mlp(3 * h, self.config.head_hidden_dim, 1)
        self.critic = mlp(3 * h, self.config.head_hidden_dim, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_scripting():
            check_observation(obs)
        graph = to_graph_batch(obs)
        x = torch.cat([self.task_encoder(graph.x_task), self.job_encoder(graph.x_job), self.pe_encoder(graph.x_pe)])
        slots, weight = relation_slots(graph.edge_index, graph.edge_type, x.shape[0], self.n_relations)
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + torch.relu(conv(x, slots, weight)))
        n_task, n_job = graph.x_task.shape[0], graph.x_job.shape[0]
        B = graph.batch_size
        task_mean = scatter(x[:n_task], graph.task_batch, dim=0, dim_size=B, reduce="mean")
        job_mean = scatter(x[n_task : n_task + n_job], graph.job_batch, dim=0, dim_size=B, reduce="mean")
        pe_mean = scatter(x[n_task + n_job :], graph.pe_batch, dim=0, dim_size=B, reduce="mean")
        T, P = graph.task_slot.shape[1], graph.pe_slot.shape[1]
        pairs = torch.cat(
            [
                x[graph.task_slot][:, :, None, :].expand(-1, -1, P, -1),
                x[graph.pe_slot][:, None, :, :].expand(-1, T, -1, -1),
                obs["pair_features"].float(),
                task_mean[:, None, None, :].expand(-1, T, P, -1),
            ],
            dim=-1,
        )
        scores = self.actor(pairs).squeeze(-1)  # [B, T, P]
        if self.mode == "order":
            logits = scores.gather(2, obs["eft_pe"].long()[:, :, None]).squeeze(2)
        else:
            logits = scores.reshape(B, T * P)
        pooled = torch.cat([task_mean, job_mean, pe_mean], dim=-1)
        logits = torch.cat([logits, self.waiter(pooled)], dim=1)
        return logits, self.critic(pooled).squeeze(-1)
