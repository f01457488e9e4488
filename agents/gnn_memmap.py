"""The memmap actor-critic network: message passing over buffers live at the same time, then one score for slow
memory and one per candidate offset of the buffer being placed."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.utils import scatter

from schedgym.agents.gnn import GnnConfig, RelationalMeanConv, mlp, relation_slots
from schedgym.graphs.memmap import BUFFER_FEATURES, CANDIDATE_FEATURES

_KEYS = ("buffer_features", "buffer_mask", "edges", "candidate_features", "action_mask")
_CURRENT = BUFFER_FEATURES.index("current")


def check_observation(obs: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming the problem if ``obs`` is not a batch of memmap observations."""
    hint = "build observations with schedgym.graphs.memmap.MemMapEncoder (MemoryMappingEnv does) and add a batch dimension"
    if not isinstance(obs, dict) or set(_KEYS) - set(obs):
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ValueError(f"observation has keys {keys}, expected {sorted(_KEYS)}; {hint}")
    if obs["buffer_features"].dim() != 3 or obs["buffer_features"].shape[-1] != len(BUFFER_FEATURES):
        raise ValueError(f"observation['buffer_features'] has shape {tuple(obs['buffer_features'].shape)}, expected [batch, buffers, {len(BUFFER_FEATURES)}]; {hint}")
    if obs["candidate_features"].dim() != 3 or obs["candidate_features"].shape[-1] != len(CANDIDATE_FEATURES):
        raise ValueError(f"observation['candidate_features'] has shape {tuple(obs['candidate_features'].shape)}, expected [batch, K, {len(CANDIDATE_FEATURES)}]; {hint}")


class MemMapGnn(nn.Module):
    """obs (padded, batch first) -> (logits ``[B, K + 1]``: slow memory, then each candidate; value ``[B]``).

    Buffer nodes, ``n_layers`` residual mean-aggregation rounds over the time-overlap edges; a candidate's logit is
    an MLP of the current buffer's embedding, the mean embedding and the candidate's features; slow memory has its
    own MLP of the first two; the value is an MLP of the mean embedding.
    """

    def __init__(self, config: GnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or GnnConfig()
        h = self.config.hidden_dim
        self.encoder = nn.Sequential(nn.Linear(len(BUFFER_FEATURES), h), nn.ReLU(), nn.Linear(h, h))
        self.convs = nn.ModuleList(RelationalMeanConv(h, h, 1) for _ in range(self.config.n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(self.config.n_layers))
        self.candidate_head = mlp(2 * h + len(CANDIDATE_FEATURES), self.config.head_hidden_dim, 1)
        self.slow_head = mlp(2 * h, self.config.head_hidden_dim, 1)
        self.critic = mlp(h, self.config.head_hidden_dim, 1)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.jit.is_scripting():
            check_observation(obs)
        mask = obs["buffer_mask"] != 0
        batch_size, n_slots = mask.shape
        device = mask.device
        node_id = torch.cumsum(mask.reshape(-1).long(), 0) - 1
        rows = torch.arange(batch_size, device=device)[:, None]
        edges = obs["edges"].long()
        real = edges[..., 0] >= 0
        base = rows * n_slots
        edge_index = torch.stack([node_id[(base + edges[..., 0].clamp(min=0))[real]], node_id[(base + edges[..., 1].clamp(min=0))[real]]])
        features = obs["buffer_features"].float()
        x = self.encoder(features[mask])
        slots, weight = relation_slots(edge_index, torch.zeros(edge_index.shape[1], dtype=torch.long, device=device), x.shape[0], 1)
        for conv, norm in zip(self.convs, self.norms):
            x = norm(x + torch.relu(conv(x, slots, weight)))
        node_batch = rows.expand(-1, n_slots)[mask]
        mean = scatter(x, node_batch, dim=0, dim_size=batch_size, reduce="mean")
        current_slot = features[..., _CURRENT].argmax(dim=1)
        current = x[node_id[rows[:, 0] * n_slots + current_slot]]
        candidates = obs["candidate_features"].float()
        k = candidates.shape[1]
        context = torch.cat([current, mean], dim=-1)
        candidate_logits = self.candidate_head(torch.cat([context[:, None, :].expand(-1, k, -1), candidates], dim=-1)).squeeze(-1)
        logits = torch.cat([self.slow_head(context), candidate_logits], dim=-1)
        return logits, self.critic(mean).squeeze(-1)
