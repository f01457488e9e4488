"""The devices a replay runs on, and the one check every backend makes before it starts."""

from __future__ import annotations

import torch

DEVICES = ("cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """``cpu`` or ``cuda`` as a torch device.

    Raises:
        ValueError: an unknown device. RuntimeError: ``cuda`` without a CUDA device.
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device here (torch.cuda.is_available() is False); replay with --device cpu")
    return torch.device(device)
