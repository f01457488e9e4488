"""Which network each problem's policy uses."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from schedgym.agents.gnn import GnnConfig, JobShopGnn
from schedgym.agents.gnn_improve import JobShopImproveGnn
from schedgym.agents.gnn_llmrouting import LlmRoutingGnn
from schedgym.agents.gnn_memmap import MemMapGnn
from schedgym.agents.gnn_socdag import SocDagGnn

#: The network of each problem's policy: (config, socdag action mode, socdag binding) -> untrained module.
NETWORKS: dict[str, Callable[[GnnConfig, str, str], nn.Module]] = {
    "jobshop": lambda config, mode, binding: JobShopGnn(config),
    "jobshop-improve": lambda config, mode, binding: JobShopImproveGnn(config),
    "jobshop-blocking": lambda config, mode, binding: JobShopGnn(config),
    "socdag": SocDagGnn,
    "llmrouting": lambda config, mode, binding: LlmRoutingGnn(config),
    "memmap": lambda config, mode, binding: MemMapGnn(config),
}


def build_network(problem: str, config: GnnConfig, mode: str = "order", binding: str = "early") -> nn.Module:
    """The untrained network of ``problem``'s policy (``mode``, ``binding``: the socdag action mode and binding)."""
    if problem not in NETWORKS:
        raise ValueError(f"no policy network for problem {problem!r}; policies exist for {', '.join(NETWORKS)}")
    return NETWORKS[problem](config, mode, binding)
