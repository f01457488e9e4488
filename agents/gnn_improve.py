"""The improvement network: scores every N5 move of a complete job-shop schedule (pointer-style) and values it."""

from __future__ import annotations

import torch
from torch import nn

from schedgym.agents.gnn import GnnConfig, RelationalMeanConv, RelationalRounds, _gather_nodes, _machine_order, check_observation_fields, mlp
from schedgym.graphs.jobshop import RELATIONS
from schedgym.graphs.jobshop_improve import IMPROVE_MACHINE_FEATURES, IMPROVE_OP_FEATURES

_OBSERVATION_RANKS = {
    "op_features": 3, "op_mask": 2, "op_machine": 2, "op_job_next": 2, "machine_pred": 2,
    "machine_features": 3, "machine_mask": 2, "action_mask": 2,
}


def check_improve_observation(obs: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the problem if ``obs`` is not a batch of improvement observations."""
    hint = "build observations with schedgym.graphs.jobshop_improve.ImproveEncoder (JobShopImproveEnv does) and add a batch dimension"
    widths = {"op_features": len(IMPROVE_OP_FEATURES), "machine_features": len(IMPROVE_MACHINE_FEATURES)}
    check_observation_fields(obs, _OBSERVATION_RANKS, widths, hint)

class JobShopImproveGnn(RelationalRounds):
    """obs (padded tensors, batch first) -> (logits ``[B, N]``, value ``[B]``).

    The relational rounds of :class:`~schedgym.agents.gnn.JobShopGnn` (:meth:`RelationalRounds.relational_rounds`: job and machine
    order in both directions, i.e. the forward and the backward view of the disjunctive graph, and machine
    membership) over the schedule's features; a node's logit is an MLP of its embedding, the embedding of its
    machine successor (the operation it would swap with) and the mean embedding, so one set of weights scores the
    moves of any instance size. The value is an MLP of the mean operation and machine embeddings. The action mask
    is applied by the caller.
    """

    def __init__(self, config: GnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or GnnConfig()
        h = self.config.hidden_dim
        self.op_encoder = nn.Sequential(nn.Linear(len(IMPROVE_OP_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.machine_encoder = nn.Sequential(nn.Linear(len(IMPROVE_MACHINE_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.convs = nn.ModuleList(RelationalMeanConv(h, h, len(RELATIONS)) for _ in range(self.config.n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(self.config.n_layers))
        self.actor = mlp(3 * h, self.config.head_hidden_dim, 1)
        self.critic = mlp(2 * h, self.config.head_hidden_dim, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_scripting():
            check_improve_observation(obs)
        op_mask = obs["op_mask"] != 0  # [B, N]
        machine_mask = obs["machine_mask"] != 0  # [B, M]
        op_machine = obs["op_machine"].long().clamp(0, machine_mask.shape[1] - 1)
        machine_pred = obs["machine_pred"].long()
        job_order = (obs["op_job_next"][:, :-1] != 0).float()[:, :, None]
        x_op = self.op_encoder(obs["op_features"].float())
        x_machine = self.machine_encoder(obs["machine_features"].float())
        x_op, x_machine = self.relational_rounds(x_op, x_machine, op_mask, op_machine, machine_pred, job_order)

        op_weights = op_mask.float()[:, :, None]
        op_mean = (x_op * op_weights).sum(1) / op_weights.sum(1).clamp(min=1.0)
        machine_weights = machine_mask.float()[:, :, None]
        machine_mean = (x_machine * machine_weights).sum(1) / machine_weights.sum(1).clamp(min=1.0)
        successor = _machine_order(op_mask, machine_pred)[2]  # [B, N]: the operation each node would swap with
        features = torch.cat([x_op, _gather_nodes(x_op, successor), op_mean[:, None, :].expand_as(x_op)], dim=-1)
        logits = self.actor(features).squeeze(-1)
        value = self.critic(torch.cat([op_mean, machine_mean], dim=-1)).squeeze(-1)
        return logits, value
