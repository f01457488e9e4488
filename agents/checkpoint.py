"""Policy checkpoints: an SB3 ``MaskablePPO`` zip plus a ``schedgym.json`` entry saying what it is."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from schedgym.agents.gnn import GnnConfig
from schedgym.agents.networks import build_network

METADATA_ENTRY = "schedgym.json"
#: Pretrained policies shipped inside the package: name -> file in ``schedgym/agents/policies``.
SHIPPED_POLICIES = {
    "jobshop-default": "jobshop-default.zip",
    "jobshop-improve-default": "jobshop-improve-default.zip",
    "jobshop-blocking-default": "jobshop-blocking-default.zip",
    "socdag-default": "socdag-default.zip",
    "llmrouting-default": "llmrouting-default.zip",
    "memmap-default": "memmap-default.zip",
}
DEFAULT_POLICY = {"jobshop": "jobshop-default", "jobshop-improve": "jobshop-improve-default", "jobshop-blocking": "jobshop-blocking-default", "socdag": "socdag-default", "llmrouting": "llmrouting-default", "memmap": "memmap-default"}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or for another problem; the message says which and what to do."""


@dataclass
class PolicyMetadata:
    """What a checkpoint holds and how it was made."""

    problem: str
    gnn: dict
    train: dict = field(default_factory=dict)  # the TrainConfig it was trained with
    num_timesteps: int = 0
    where_trained: str = ""
    figures: dict = field(default_factory=dict)  # validation figures recorded at save time

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1)


def add_metadata(path: str | os.PathLike, metadata: PolicyMetadata) -> None:
    """Store ``metadata`` inside the SB3 zip at ``path`` (replacing any earlier entry), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != METADATA_ENTRY:
                target.writestr(item, source.read(item.filename))
        target.writestr(METADATA_ENTRY, metadata.to_json())
    os.replace(tmp, path)


def resolve_policy_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped policy name (``jobshop-default``) or a file path -> the checkpoint's path.

    Raises:
        CheckpointError: if neither a shipped name nor an existing file.
    """
    key = str(name_or_path)
    if key in SHIPPED_POLICIES:
        path = Path(str(resources.files("schedgym.agents") / "policies" / SHIPPED_POLICIES[key]))
        if not path.exists():
            raise CheckpointError(f"the shipped policy {key!r} is missing from the installation ({path}); reinstall schedgym")
        return path
    path = Path(key)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {key!r} not found; pass the path of a .zip written by `schedgym train`, "
            f"or a shipped policy name ({', '.join(SHIPPED_POLICIES)})"
        )
    return path


def read_metadata(path: str | os.PathLike) -> PolicyMetadata:
    """The ``schedgym.json`` entry of a checkpoint.

    Raises:
        CheckpointError: if the file is not a zip, or has no (valid) schedgym entry.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_ENTRY not in archive.namelist():
                raise CheckpointError(f"{path} is not a schedgym checkpoint (no {METADATA_ENTRY}); train one with `schedgym train`")
            return PolicyMetadata(**json.loads(archive.read(METADATA_ENTRY)))
    except (zipfile.BadZipFile, json.JSONDecodeError, TypeError, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({exc}); re-export it or train again with `schedgym train`") from None


def load_network(name_or_path: str | os.PathLike, problem: str | None = "jobshop") -> tuple[torch.nn.Module, PolicyMetadata]:
    """Load only the GNN of a checkpoint (no SB3 objects), in eval mode on the CPU; ``problem=None`` takes the
    checkpoint's own problem.

    Raises:
        CheckpointError: missing or corrupt file, or a checkpoint for another problem.
    """
    path = resolve_policy_path(name_or_path)
    metadata = read_metadata(path)
    problem = problem or metadata.problem
    if metadata.problem != problem:
        raise CheckpointError(
            f"checkpoint {path} holds a {metadata.problem!r} policy, not a {problem!r} one; "
            f"pass a {problem} checkpoint or train one with `schedgym train {problem}`"
        )
    net = build_network(problem, GnnConfig(**metadata.gnn), metadata.train.get("mode", "order"), metadata.train.get("binding", "early"))
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open("policy.pth") as handle:
                state: dict[str, Any] = torch.load(handle, map_location="cpu", weights_only=True)
        net.load_state_dict({key.removeprefix("net."): value for key, value in state.items() if key.startswith("net.")})
    except (KeyError, RuntimeError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or does not match its network ({exc}); train it again") from None
    net.eval()
    return net, metadata
