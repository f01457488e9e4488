"""Which network each problem's policy uses."""

from __future__ import annotations

from torch import nn

from schedgym.agents.gnn import GnnConfig, JobShopGnn
from schedgym.agents.gnn_llmrouting import LlmRoutingGnn
from schedgym.agents.gnn_memmap import MemMapGnn
from schedgym.agents.gnn_socdag import SocDagGnn

#: Problems a GNN policy exists for.
POLICY_PROBLEMS = ("jobshop", "socdag", "llmrouting", "memmap")


def build_network(problem: str, config: GnnConfig, mode: str = "order") -> nn.Module:
    """The untrained network of ``problem``'s policy (``mode``: the socdag action mode)."""
    if problem == "jobshop":
        return JobShopGnn(config)
    if problem == "socdag":
        return SocDagGnn(config, mode)
    if problem == "llmrouting":
        return LlmRoutingGnn(config)
    if problem == "memmap":
        return MemMapGnn(config)
    raise ValueError(f"no policy network for problem {problem!r}; policies exist for {', '.join(POLICY_PROBLEMS)}")
