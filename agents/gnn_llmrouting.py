"""The llmrouting actor-critic network: message passing on the star graph (request <-> replicas), one score per
replica, so one set of weights routes across any number of replicas."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.utils import scatter

from schedgym.agents.gnn import GnnConfig, RelationalMeanConv, mlp, relation_slots
from schedgym.graphs.llmrouting import REPLICA_FEATURES, REPLICA_LOAD_FEATURES, REQUEST_FEATURES, REQUEST_LOAD_FEATURES

_KEYS = ("replica_features", "replica_mask", "request_features", "action_mask")
#: Relations of the star graph: request -> replica, replica -> request.
RELATIONS = ("request_to_replica", "replica_to_request")


def check_observation(obs: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the problem if ``obs`` is not a batch of llmrouting observations."""
    hint = "build observations with schedgym.graphs.llmrouting.LlmRoutingEncoder (LlmRoutingEnv does) and add a batch dimension"
    if not isinstance(obs, dict) or set(_KEYS) - set(obs):
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ValueError(f"observation has keys {keys}, expected {sorted(_KEYS)}; {hint}")
    if obs["replica_features"].dim() != 3 or obs["replica_features"].shape[-1] != len(REPLICA_FEATURES):
        raise ValueError(f"observation['replica_features'] has shape {tuple(obs['replica_features'].shape)}, expected [batch, replicas, {len(REPLICA_FEATURES)}]; {hint}")
    if obs["request_features"].dim() != 2 or obs["request_features"].shape[-1] != len(REQUEST_FEATURES):
        raise ValueError(f"observation['request_features'] has shape {tuple(obs['request_features'].shape)}, expected [batch, {len(REQUEST_FEATURES)}]; {hint}")


class LlmRoutingGnn(nn.Module):
    """obs (padded, batch first) -> (logits ``[B, R]``, value ``[B]``).

    Nodes: the real replicas of every state, then one request node per state (with
    ``config.routing_load_features`` their inputs also hold ``replica_load_features`` / ``request_load_features``);
    ``n_layers`` residual relational rounds over the two star relations. A replica's logit is an MLP of its embedding and the request's; the value
    is an MLP of the mean replica embedding and the request's.
    """

    def __init__(self, config: GnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or GnnConfig()
        h = self.config.hidden_dim
        self.n_relations = len(RELATIONS)
        self.load_features = bool(self.config.routing_load_features)
        replica_in = len(REPLICA_FEATURES) + (len(REPLICA_LOAD_FEATURES) if self.load_features else 0)
        request_in = len(REQUEST_FEATURES) + (len(REQUEST_LOAD_FEATURES) if self.load_features else 0)
        self.replica_encoder = nn.Sequential(nn.Linear(replica_in, h), nn.ReLU(), nn.Linear(h, h))
        self.request_encoder = nn.Sequential(nn.Linear(request_in, h), nn.ReLU(), nn.Linear(h, h))
        self.convs = nn.ModuleList(RelationalMeanConv(h, h, self.n_relations) for _ in range(self.config.n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(self.config.n_layers))
        self.actor = mlp(2 * h, self.config.head_hidden_dim, 1)
        self.critic = mlp(2 * h, self.config.head_hidden_dim, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_scripting():
            check_observation(obs)
        mask = obs["replica_mask"] != 0
        batch_size, n_slots = mask.shape
        device = mask.device
        n_replicas = int(mask.sum())
        replica_batch = torch.arange(batch_size, device=device)[:, None].expand(-1, n_slots)[mask]
        request_node = n_replicas + replica_batch  # the request node of each replica's state
        real = torch.arange(n_replicas, device=device)
        edge_index = torch.stack([torch.cat([request_node, real]), torch.cat([real, request_node])])
        edge_type = torch.cat([torch.zeros(n_replicas, dtype=torch.long, device=device), torch.ones(n_replicas, dtype=torch.long, device=device)])
        replica_in, request_in = obs["replica_features"], obs["request_features"]
        if self.load_features:
            replica_in = torch.cat([replica_in, obs["replica_load_features"]], dim=-1)
            request_in = torch.cat([request_in, obs["request_load_features"]], dim=-1)
        x = torch.cat([self.replica_encoder(replica_in[mask].float()), self.request_encoder(request_in.float())])
        slots, weight = relation_slots(edge_index, edge_type, x.shape[0], self.n_relations)
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + torch.relu(conv(x, slots, weight)))
        request = x[n_replicas:]
        scores = self.actor(torch.cat([x[:n_replicas], request[replica_batch]], dim=-1)).squeeze(-1)
        logits = torch.full((batch_size, n_slots), -1e9, device=device, dtype=scores.dtype)
        logits[mask] = scores
        replica_mean = scatter(x[:n_replicas], replica_batch, dim=0, dim_size=batch_size, reduce="mean")
        value = self.critic(torch.cat([replica_mean, request], dim=-1)).squeeze(-1)
        return logits, value
