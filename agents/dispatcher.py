"""Run an exported (TorchScript) policy inside any scheduler loop, without SB3 or Gymnasium at run time.

    dispatcher = PolicyDispatcher.load("export/jobshop-policy.pt")
    sim = JobShopSimulator(instance)
    while not sim.done:
        sim.dispatch(dispatcher.choose(sim))

``choose`` encodes the simulator's state with the same encoder the env uses and returns the job to dispatch next;
when only one job is allowed it returns it without running the network. :class:`RouterDispatcher` does the same for
an LLM router: ``choose(sim, request)`` returns the replica for an arriving request.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from schedgym.agents.checkpoint import CheckpointError
from schedgym.envs.jobshop.simulator import JobShopSimulator
from schedgym.envs.llmrouting.simulator import ServingSimulator
from schedgym.graphs.jobshop import JobShopEncoder
from schedgym.graphs.llmrouting import LlmRoutingEncoder

MANIFEST_SUFFIX = ".json"


def load_exported(path: str | os.PathLike, problem: str) -> tuple[torch.jit.ScriptModule, dict]:
    """The TorchScript module at ``path`` (in eval mode, on the CPU) and its manifest, checked to be a ``problem``
    policy.

    Raises:
        CheckpointError: if the file or its manifest is missing or corrupt, or the policy is for another problem.
    """
    path = Path(path)
    manifest_path = path.with_suffix(MANIFEST_SUFFIX)
    if not path.exists() or not manifest_path.exists():
        raise CheckpointError(f"exported policy {path} (with its manifest {manifest_path.name}) not found; write it with `schedgym export`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"manifest {manifest_path} is corrupt ({exc}); export the policy again with `schedgym export`") from None
    if manifest.get("problem") != problem or (problem == "jobshop" and "action_filter" not in manifest):
        raise CheckpointError(f"{path} is not an exported {problem} policy (manifest problem {manifest.get('problem')!r}); export one with `schedgym export --policy {problem}-default`")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript stays the portable format here
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a TorchScript policy ({str(exc).splitlines()[0]}); export it again with `schedgym export`") from None
    return module.eval(), manifest


class PolicyDispatcher:
    """Greedy decisions of an exported job-shop policy.

    Args:
        module: the TorchScript network (obs dict -> (logits, value)).
        action_filter: which jobs the policy chooses among (the filter it was trained with, from the manifest).
    """

    def __init__(self, module: torch.jit.ScriptModule, action_filter: str = "giffler-thompson") -> None:
        self.module = module
        self.action_filter = action_filter
        self._encoder: JobShopEncoder | None = None
        self._encoded_instance = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PolicyDispatcher":
        """Load ``path`` (written by ``schedgym export``) and its ``.json`` manifest beside it.

        Raises:
            CheckpointError: if the file is missing, not a TorchScript module, or not a job-shop policy.
        """
        module, manifest = load_exported(path, "jobshop")
        return cls(module, manifest["action_filter"])

    @torch.no_grad()
    def choose(self, sim: JobShopSimulator) -> int:
        """The job whose next operation the policy dispatches in ``sim``'s current state."""
        candidates = sim.candidate_jobs(self.action_filter)
        allowed = np.flatnonzero(candidates)
        if allowed.size == 0:
            raise ValueError("the schedule is complete: no job has an operation left")
        if allowed.size == 1:
            return int(allowed[0])
        if self._encoded_instance is not sim.instance:
            inst = sim.instance
            self._encoder = JobShopEncoder(inst.n_jobs, inst.n_ops, inst.n_machines)
            self._encoder.reset(sim)
            self._encoded_instance = inst
        obs = self._encoder.encode(sim, candidates)
        logits, _ = self.module({key: torch.from_numpy(value)[None] for key, value in obs.items()})
        logits = logits[0, : len(candidates)].masked_fill(~torch.from_numpy(candidates), float("-inf"))
        return int(logits.argmax())


class RouterDispatcher:
    """Greedy routing decisions of an exported llmrouting policy, for any number of replicas.

        router = RouterDispatcher.load("export/llmrouting-policy.pt")
        sim = instance.simulator()
        for request in range(n_requests):
            sim.advance_to(arrival_s[request])
            sim.route(request, router.choose(sim, request))

    Args:
        module: the network (obs dict -> (logits, value)): the TorchScript export, or the eager network of
            :func:`schedgym.agents.checkpoint.load_network`.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self._encoder: LlmRoutingEncoder | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RouterDispatcher":
        """Load ``path`` (written by ``schedgym export --policy llmrouting-default``) and its manifest.

        Raises:
            CheckpointError: if the file is missing, not a TorchScript module, or not an llmrouting policy.
        """
        return cls(load_exported(path, "llmrouting")[0])

    @torch.inference_mode()
    def choose(self, sim: ServingSimulator, request: int) -> int:
        """The replica the policy sends ``request`` to, in ``sim``'s state at its arrival."""
        n_replicas = len(sim.replicas)
        if self._encoder is None or self._encoder.max_replicas != n_replicas:
            self._encoder = LlmRoutingEncoder(n_replicas)
        obs = self._encoder.encode(sim, request)
        logits, _ = self.module({key: torch.from_numpy(value)[None] for key, value in obs.items()})
        return int(logits[0].argmax())
