"""The GNN actor-critic network: a relational GNN over the job-shop graph, pointer-style action scores and a value.

Size-agnostic: the same weights score the candidate jobs of a 6x6 or a 100x20 instance, because every output is
computed per node (one logit per candidate operation) or from mean-pooled embeddings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from schedgym.graphs.jobshop import MACHINE_FEATURES, OP_FEATURES, RELATIONS, to_graph_batch


@dataclass
class GnnConfig:
    """Hyper-parameters of :class:`JobShopGnn`."""

    hidden_dim: int = 32  # width of every node embedding
    n_layers: int = 3  # relational message-passing rounds (mean per relation, see RelationalMeanConv)
    head_hidden_dim: int = 64  # hidden width of the actor (per candidate) and critic MLPs

    def to_dict(self) -> dict:
        return asdict(self)


class RelationalMeanConv(MessagePassing):
    """One relational message-passing round: per relation r the mean of the neighbours' embeddings,
    ``out_i = W_root x_i + W [mean_{j in N_0(i)} x_j, ..., mean_{j in N_R-1(i)} x_j]``.

    Equivalent to an R-GCN layer with mean aggregation, computed with a single scatter: each edge carries its
    message, weighted by 1 / (edges into its slot), into one of ``n_nodes * n_relations`` slots (target
    ``i * R + r``); one linear layer then mixes the relations. Slots and weights depend only on the graph, so
    :func:`relation_slots` computes them once for every round.
    """

    def __init__(self, in_dim: int, out_dim: int, n_relations: int) -> None:
        super().__init__(aggr="add")
        self.n_relations = n_relations
        self.root = nn.Linear(in_dim, out_dim)
        self.relations = nn.Linear(n_relations * in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, slots: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n_nodes = x.shape[0]
        aggregated = self.propagate(slots, x=x, weight=weight, size=(n_nodes, n_nodes * self.n_relations))
        return self.root(x) + self.relations(aggregated.reshape(n_nodes, -1))

    def message(self, x_j: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x_j * weight.unsqueeze(-1)


def relation_slots(edge_index: torch.Tensor, edge_type: torch.Tensor, n_nodes: int, n_relations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, slot) pairs ``[2, E]`` and the mean weight of each edge ``[E]`` for :class:`RelationalMeanConv`."""
    slot = edge_index[1] * n_relations + edge_type
    count = torch.bincount(slot, minlength=n_nodes * n_relations)
    return torch.stack([edge_index[0], slot]), 1.0 / count[slot].to(torch.float32)


_OBSERVATION_RANKS = {
    "op_features": 3, "op_mask": 2, "op_machine": 2, "machine_pred": 2,
    "machine_features": 3, "machine_mask": 2, "job_candidate": 2, "action_mask": 2,
}


def check_observation(obs: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the problem if ``obs`` is not a batch of job-shop observations."""
    hint = "build observations with schedgym.graphs.JobShopEncoder (JobShopEnv does) and add a batch dimension"
    if not isinstance(obs, dict) or set(_OBSERVATION_RANKS) - set(obs):
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ValueError(f"observation has keys {keys}, expected {sorted(_OBSERVATION_RANKS)}; {hint}")
    for key, rank in _OBSERVATION_RANKS.items():
        if obs[key].dim() != rank:
            raise ValueError(f"observation[{key!r}] has shape {tuple(obs[key].shape)}, expected {rank} dimensions (batch first); {hint}")
    widths = {"op_features": len(OP_FEATURES), "machine_features": len(MACHINE_FEATURES)}
    for key, width in widths.items():
        if obs[key].shape[-1] != width:
            raise ValueError(f"observation[{key!r}] has {obs[key].shape[-1]} features per node, expected {width}; {hint}")
    n_nodes, n_jobs = obs["op_features"].shape[1], obs["action_mask"].shape[1]
    if obs["op_mask"].shape[1] != n_nodes or obs["machine_pred"].shape[1] != n_nodes or obs["job_candidate"].shape[1] != n_jobs:
        raise ValueError(f"observation fields disagree on the number of nodes ({n_nodes}) or jobs ({n_jobs}); {hint}")


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Two tanh hidden layers of width ``hidden``: the actor and critic heads."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out_dim))


class JobShopGnn(nn.Module):
    """obs (padded tensors, batch first) -> (logits ``[B, max_jobs]``, value ``[B]``).

    Operation and machine nodes get their own input encoders, then ``n_layers`` residual relational rounds over the six
    relations of :data:`schedgym.graphs.jobshop.RELATIONS`. A candidate job's logit is an MLP of its next
    operation's embedding, its machine's embedding and the mean operation embedding of its state (a pointer over the
    candidates, no fixed-width head). The value is an MLP of the mean operation and machine embeddings.
    Logits of jobs without a candidate are left as computed; the action mask is applied by the caller.
    """

    def __init__(self, config: GnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or GnnConfig()
        h = self.config.hidden_dim
        self.op_encoder = nn.Sequential(nn.Linear(len(OP_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.machine_encoder = nn.Sequential(nn.Linear(len(MACHINE_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.n_relations = len(RELATIONS)
        self.convs = nn.ModuleList(RelationalMeanConv(h, h, self.n_relations) for _ in range(self.config.n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(self.config.n_layers))
        self.actor = mlp(3 * h, self.config.head_hidden_dim, 1)
        self.critic = mlp(2 * h, self.config.head_hidden_dim, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_scripting():
            check_observation(obs)
        graph = to_graph_batch(obs)
        x = torch.cat([self.op_encoder(graph.x_op), self.machine_encoder(graph.x_machine)])
        slots, weight = relation_slots(graph.edge_index, graph.edge_type, x.shape[0], self.n_relations)
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + torch.relu(conv(x, slots, weight)))
        n_op = graph.x_op.shape[0]
        op_mean = scatter(x[:n_op], graph.op_batch, dim=0, dim_size=graph.batch_size, reduce="mean")
        machine_mean = scatter(x[n_op:], graph.machine_batch, dim=0, dim_size=graph.batch_size, reduce="mean")
        candidate = torch.cat(
            [x[graph.candidate_op], x[graph.candidate_machine], op_mean[:, None, :].expand(-1, graph.candidate_op.shape[1], -1)],
            dim=-1,
        )
        logits = self.actor(candidate).squeeze(-1)
        value = self.critic(torch.cat([op_mean, machine_mean], dim=-1)).squeeze(-1)
        return logits, value
