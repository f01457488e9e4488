"""Export a trained policy as a TorchScript file plus a JSON manifest, for the dispatchers of
:mod:`schedgym.agents.dispatcher` (``PolicyDispatcher`` for jobshop, ``RouterDispatcher`` for llmrouting)."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import torch

from schedgym.agents.checkpoint import CheckpointError, load_network, read_metadata, resolve_policy_path
from schedgym.agents.rollout import POLICY_ENV_OPTIONS
from schedgym.atomic import atomic_write_bytes, atomic_write_text


#: What an exported network reads and returns, per problem that has a dispatcher in :mod:`schedgym.agents.dispatcher`.
EXPORT_SIGNATURES = {
    "jobshop": ("dict of batched observation tensors, see schedgym.graphs.JobShopEncoder", "(logits [B, max_jobs], value [B])"),
    "llmrouting": ("dict of batched observation tensors, see schedgym.graphs.llmrouting.LlmRoutingEncoder", "(logits [B, max_replicas], value [B])"),
}


def export_policy(policy: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write ``out`` (TorchScript network: obs dict -> (logits, value); default ``export/<problem>-policy.pt``) and
    ``out`` with suffix ``.json`` (problem, network and training metadata; for jobshop also the action filter).
    Returns ``out``.

    Raises:
        CheckpointError: missing or corrupt checkpoint, or a problem without a dispatcher (socdag, memmap).
    """
    problem = read_metadata(resolve_policy_path(policy)).problem
    if problem not in EXPORT_SIGNATURES:
        raise CheckpointError(f"{policy} is a {problem!r} policy; export covers {' and '.join(EXPORT_SIGNATURES)} policies, which have dispatchers")
    net, metadata = load_network(policy, problem)
    out = Path(out) if out is not None else Path("export") / f"{problem}-policy.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated but still the portable format
        scripted = torch.jit.script(net)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    inputs, outputs = EXPORT_SIGNATURES[problem]
    manifest = {
        "problem": problem,
        "format": "torchscript",
        "gnn": metadata.gnn,
        "num_timesteps": metadata.num_timesteps,
        "where_trained": metadata.where_trained,
        "inputs": inputs,
        "outputs": outputs,
    }
    if problem == "jobshop":
        manifest["action_filter"] = POLICY_ENV_OPTIONS["action_filter"]
    atomic_write_text(out.with_suffix(".json"), json.dumps(manifest, indent=1))
    return out
