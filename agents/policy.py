"""The GNN as an sb3-contrib ``MaskableActorCriticPolicy``: MaskablePPO trains it like any other policy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sb3_contrib.common.maskable.distributions import MaskableDistribution
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

from schedgym.agents.gnn import GnnConfig
from schedgym.agents.networks import build_network


class GnnMaskablePolicy(MaskableActorCriticPolicy):
    """Actor-critic whose logits (one per candidate action) and value come from the problem's GNN
    (:class:`~schedgym.agents.gnn.JobShopGnn` or :class:`~schedgym.agents.gnn_socdag.SocDagGnn`).

    SB3's features extractor and MLP extractor are bypassed: the GNN reads the observation dict directly, so the
    policy works on any padding size (the observation space only fixes the training env's).

    Args:
        gnn: the network's hyper-parameters (a :class:`GnnConfig` or its dict).
        problem: ``jobshop``, ``socdag``, ``llmrouting`` or ``memmap``.
        mode, binding: the socdag action mode (``order`` or ``pair``) and binding (``early`` or ``late``).
    """

    def __init__(
        self, observation_space, action_space, lr_schedule, gnn: GnnConfig | dict | None = None,
        problem: str = "jobshop", mode: str = "order", binding: str = "early", **kwargs: Any,
    ):
        self.gnn_config = GnnConfig(**gnn) if isinstance(gnn, dict) else (gnn or GnnConfig())
        self.problem, self.mode, self.binding = problem, mode, binding
        kwargs.setdefault("ortho_init", False)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule) -> None:
        self.net = build_network(self.problem, self.gnn_config, self.mode, self.binding)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(gnn=self.gnn_config.to_dict(), problem=self.problem, mode=self.mode, binding=self.binding)
        return data

    def _distribution(self, logits: torch.Tensor, action_masks: np.ndarray | torch.Tensor | None) -> MaskableDistribution:
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        if action_masks is not None:
            distribution.apply_masking(action_masks)
        return distribution

    def forward(self, obs, deterministic: bool = False, action_masks=None):
        logits, values = self.net(obs)
        distribution = self._distribution(logits, action_masks)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values[:, None], distribution.log_prob(actions)

    def evaluate_actions(self, obs, actions: torch.Tensor, action_masks=None):
        logits, values = self.net(obs)
        distribution = self._distribution(logits, action_masks)
        return values[:, None], distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs, action_masks=None) -> MaskableDistribution:
        logits, _ = self.net(obs)
        return self._distribution(logits, action_masks)

    def predict_values(self, obs) -> torch.Tensor:
        return self.net(obs)[1][:, None]
