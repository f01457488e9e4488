"""The GNN actor-critic network: a relational GNN over the job-shop graph, pointer-style action scores and a value.

Size-agnostic: the same weights score the candidate jobs of a 6x6 or a 100x20 instance, because every output is
computed per node (one logit per candidate operation) or from mean-pooled embeddings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn import MessagePassing

from schedgym.graphs.jobshop import MACHINE_FEATURES, OP_FEATURES, RELATIONS


@dataclass
class GnnConfig:
    """Hyper-parameters of :class:`JobShopGnn`."""

    hidden_dim: int = 32  # width of every node embedding
    n_layers: int = 3  # relational message-passing rounds (mean per relation, see RelationalMeanConv)
    head_hidden_dim: int = 64  # hidden width of the actor (per candidate) and critic MLPs
    routing_load_features: bool = False  # llmrouting: also read the replicas' memory, model speed and predicted work

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


def check_observation_fields(obs: dict[str, torch.Tensor], ranks: dict[str, int], widths: dict[str, int], hint: str) -> None:
    """Raise ``ValueError`` (ending with ``hint``) unless ``obs`` is a dict holding every key of ``ranks`` with that
    many dimensions, and ``widths[key]`` features in the last dimension of each key of ``widths``."""
    if not isinstance(obs, dict) or set(ranks) - set(obs):
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ValueError(f"observation has keys {keys}, expected {sorted(ranks)}; {hint}")
    for key, rank in ranks.items():
        if obs[key].dim() != rank:
            raise ValueError(f"observation[{key!r}] has shape {tuple(obs[key].shape)}, expected {rank} dimensions (batch first); {hint}")
    for key, width in widths.items():
        if obs[key].shape[-1] != width:
            raise ValueError(f"observation[{key!r}] has {obs[key].shape[-1]} features per node, expected {width}; {hint}")


def check_observation(obs: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the problem if ``obs`` is not a batch of job-shop observations."""
    hint = "build observations with schedgym.graphs.JobShopEncoder (JobShopEnv does) and add a batch dimension"
    check_observation_fields(obs, _OBSERVATION_RANKS, {"op_features": len(OP_FEATURES), "machine_features": len(MACHINE_FEATURES)}, hint)
    n_nodes, n_jobs = obs["op_features"].shape[1], obs["action_mask"].shape[1]
    if obs["op_mask"].shape[1] != n_nodes or obs["machine_pred"].shape[1] != n_nodes or obs["job_candidate"].shape[1] != n_jobs:
        raise ValueError(f"observation fields disagree on the number of nodes ({n_nodes}) or jobs ({n_jobs}); {hint}")


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Two tanh hidden layers of width ``hidden``: the actor and critic heads."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out_dim))


class RelationalRounds(nn.Module):
    """Base of the job-shop networks (dispatching and improvement): ``self.convs`` (:class:`RelationalMeanConv`)
    and ``self.norms`` (LayerNorm), one pair per round, run on the padded layout by :meth:`relational_rounds`."""

    def relational_rounds(
        self, x_op: torch.Tensor, x_machine: torch.Tensor, op_mask: torch.Tensor, op_machine: torch.Tensor,
        machine_pred: torch.Tensor, job_order: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Operation embeddings ``x_op [B, N, h]`` and machine embeddings ``x_machine [B, M, h]`` after one residual
        round per conv (relation weights in :data:`schedgym.graphs.jobshop.RELATIONS` order). ``op_mask`` bool
        ``[B, N]``; ``op_machine``, ``machine_pred`` int64 ``[B, N]`` (the observation fields); ``job_order
        [B, N - 1, 1]`` from :func:`_job_order`."""
        batch_size, n_nodes, h = x_op.shape
        machine_pred, has_machine_pred, machine_succ, has_machine_succ = _machine_order(op_mask, machine_pred)
        n_machines = x_machine.shape[1]
        membership = ((op_machine[:, :, None] == torch.arange(n_machines, device=op_mask.device)) & op_mask[:, :, None]).float()
        membership = membership.transpose(1, 2) / membership.sum(1).clamp(min=1.0)[:, :, None]  # [B, M, N]: mean over a machine's operations
        for conv, norm in zip(self.convs, self.norms):
            weight = conv.relations.weight  # [h, R * h]: relation r mixes in through columns r*h:(r+1)*h (RELATIONS order)
            # the four operation -> operation relations: transform every node once per relation, then shift
            # (job order) or gather (machine order) the transformed rows to their receivers
            to_operations = weight[:, : 4 * h].reshape(h, 4, h).permute(2, 1, 0).reshape(h, 4 * h)
            to_job_next, to_job_prev, to_machine_next, to_machine_prev = (x_op @ to_operations).reshape(batch_size, n_nodes, 4, h).unbind(2)
            op_out = conv.root(x_op) + _gather_nodes(x_machine @ weight[:, 5 * h :].t(), op_machine)
            op_out = op_out + _from_job_neighbours(to_job_next, to_job_prev, job_order)
            op_out = op_out + _gather_nodes(to_machine_next, machine_pred) * has_machine_pred
            op_out = op_out + _gather_nodes(to_machine_prev, machine_succ) * has_machine_succ
            machine_out = conv.root(x_machine) + torch.bmm(membership, x_op) @ weight[:, 4 * h : 5 * h].t()
            x_op = norm(x_op + torch.relu(op_out))
            x_machine = norm(x_machine + torch.relu(machine_out))
        return x_op, x_machine


class JobShopGnn(RelationalRounds):
    """obs (padded tensors, batch first) -> (logits ``[B, max_jobs]``, value ``[B]``).

    Operation and machine nodes get their own input encoders, then ``n_layers`` residual relational rounds
    (:class:`RelationalMeanConv`'s weights) over the six relations of :data:`schedgym.graphs.jobshop.RELATIONS`. A
    candidate job's logit is an MLP of its next operation's embedding, its machine's embedding and the mean
    operation embedding of its state (a pointer over the candidates, no fixed-width head). The value is an MLP of
    the mean operation and machine embeddings. Logits of jobs without a candidate are left as computed; the
    action mask is applied by the caller.

    The rounds run on the padded ``[B, J * O, h]`` layout rather than on an edge list: in a job shop every
    operation has at most one neighbour per relation except a machine's operations, so each relation's mean is a
    shift (job order), a gather (machine order, operation -> machine) or one batched matrix product (machine <-
    its operations). Padding nodes are computed but never read by a real one. The result equals message passing
    over :func:`schedgym.graphs.jobshop.to_graph_batch`'s PyTorch Geometric graph (a test checks it), at a
    fraction of the cost: no edge list is built and no scatter runs.
    """

    def __init__(self, config: GnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or GnnConfig()
        h = self.hidden_dim = self.config.hidden_dim
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
        op_mask = obs["op_mask"] != 0  # [B, N]
        machine_mask = obs["machine_mask"] != 0  # [B, M]
        job_order = _job_order(op_mask, op_mask.shape[1] // obs["action_mask"].shape[1])
        op_machine = obs["op_machine"].long().clamp(0, machine_mask.shape[1] - 1)
        x_op = self.op_encoder(obs["op_features"].float())  # [B, N, h]
        x_machine = self.machine_encoder(obs["machine_features"].float())  # [B, M, h]
        x_op, x_machine = self.relational_rounds(x_op, x_machine, op_mask, op_machine, obs["machine_pred"].long(), job_order)

        op_weights = op_mask.float()[:, :, None]
        op_mean = (x_op * op_weights).sum(1) / op_weights.sum(1).clamp(min=1.0)
        machine_weights = machine_mask.float()[:, :, None]
        machine_mean = (x_machine * machine_weights).sum(1) / machine_weights.sum(1).clamp(min=1.0)
        candidate = obs["job_candidate"].long().clamp(min=0)  # [B, J]; jobs without one score node 0 (masked later)
        features = torch.cat(
            [
                _gather_nodes(x_op, candidate),
                _gather_nodes(x_machine, op_machine.gather(1, candidate)),
                op_mean[:, None, :].expand(-1, candidate.shape[1], -1),
            ],
            dim=-1,
        )
        logits = self.actor(features).squeeze(-1)
        value = self.critic(torch.cat([op_mean, machine_mean], dim=-1)).squeeze(-1)
        return logits, value




def _job_order(op_mask: torch.Tensor, max_ops: int) -> torch.Tensor:
    """float ``[B, N - 1, 1]``: whether padded node n + 1 is the next operation of node n's job."""
    node = torch.arange(1, op_mask.shape[1], device=op_mask.device)
    return (op_mask[:, 1:] & op_mask[:, :-1] & (node % max_ops != 0)).float()[:, :, None]


def _from_job_neighbours(to_next: torch.Tensor, to_previous: torch.Tensor, linked: torch.Tensor) -> torch.Tensor:
    """``[B, N, h]``: what each operation receives from its job's previous operation (their ``to_next`` rows) and
    from its job's next one (their ``to_previous`` rows); ``linked`` from :func:`_job_order`."""
    from_previous = F.pad(to_next[:, :-1] * linked, (0, 0, 1, 0))
    from_next = F.pad(to_previous[:, 1:] * linked, (0, 0, 0, 1))
    return from_previous + from_next


def _machine_order(op_mask: torch.Tensor, machine_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per padded operation node, the operation just before it on its machine and the one just after: (before,
    has_before, after, has_after), node indices int64 ``[B, N]`` and float ``[B, N, 1]`` masks of whether there is
    one (machine sequences are chains: each neighbour is unique)."""
    batch_size, n_nodes = op_mask.shape
    node = torch.arange(n_nodes, device=op_mask.device)
    has_pred = (machine_pred >= 0) & op_mask
    pred = machine_pred.clamp(min=0)
    # invert machine_pred: the operations without one write into a dump column
    succ = torch.full((batch_size, n_nodes + 1), n_nodes, dtype=torch.long, device=op_mask.device)
    succ.scatter_(1, torch.where(has_pred, pred, n_nodes), node.expand(batch_size, n_nodes))
    succ = succ[:, :n_nodes]
    has_succ = succ < n_nodes
    return pred, has_pred.float()[:, :, None], succ.clamp(max=n_nodes - 1), has_succ.float()[:, :, None]


def _gather_nodes(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, i]]`` for float ``x [B, N, h]`` and int64 ``index [B, K]`` -> ``[B, K, h]``.

    Rows are picked from the flattened ``[B * N, h]`` view (``index_select``, whose backward adds whole rows):
    on the CPU several times faster than ``gather`` with an index expanded over the features."""
    batch_size, n_nodes, h = x.shape
    flat_index = index + torch.arange(batch_size, device=index.device)[:, None] * n_nodes
    return x.reshape(batch_size * n_nodes, h).index_select(0, flat_index.reshape(-1)).reshape(batch_size, index.shape[1], h)
