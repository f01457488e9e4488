"""Export a trained policy as a TorchScript file plus a JSON manifest, for :class:`PolicyDispatcher`."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import torch

from schedgym.agents.checkpoint import load_network
from schedgym.agents.rollout import POLICY_ENV_OPTIONS
from schedgym.atomic import atomic_write_bytes, atomic_write_text


def export_policy(policy: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write ``out`` (TorchScript network: obs dict -> (logits, value)) and ``out`` with suffix ``.json``
    (problem, action filter, network and training metadata). Returns ``out``."""
    net, metadata = load_network(policy, "jobshop")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated but still the portable format
        scripted = torch.jit.script(net)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    manifest = {
        "problem": metadata.problem,
        "format": "torchscript",
        "action_filter": POLICY_ENV_OPTIONS["action_filter"],
        "gnn": metadata.gnn,
        "num_timesteps": metadata.num_timesteps,
        "where_trained": metadata.where_trained,
        "inputs": "dict of batched observation tensors, see schedgym.graphs.JobShopEncoder",
        "outputs": "(logits [B, max_jobs], value [B])",
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(manifest, indent=1))
    return out
