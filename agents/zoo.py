"""The policy zoo: the pretrained policies that ship inside the package, what they were trained on, and the
leaderboard figures measured with them (``schedgym policies``; load one by name: ``--solvers ppo:jobshop-default``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from schedgym.agents.checkpoint import SHIPPED_POLICIES, read_metadata, resolve_policy_path
from schedgym.envs.llmrouting import RoutingGenerator
from schedgym.envs.memmap.tracer import TraceGenerator

#: The file of leaderboard figures beside the shipped checkpoints (written by benchmarks/policy_zoo_figures.py).
FIGURES_FILE = "leaderboard.json"


@dataclass
class ZooEntry:
    """One shipped policy. ``leaderboard``: per suite of the default leaderboard, the policy's mean gap % (or mean
    objective where the suite has no bounds), its rank and the number of solvers ranked."""

    name: str
    problem: str
    trained_on: str
    steps: int
    where_trained: str
    leaderboard: list[dict]


def _trained_on(problem: str, train: dict) -> str:
    """The training distribution of a run, in words, from its TrainConfig."""
    if problem == "jobshop":
        return f"generated {train['sizes']} instances"
    if problem == "jobshop-improve":
        return f"N5 moves on schedules of generated {train['sizes']} instances ({train['improve_horizon']} moves from {train['improve_starts'].replace(',', '/')} schedules)"
    if problem == "jobshop-blocking":
        return f"generated {train['sizes']} blocking shops with swaps, shutdown rates {train['blocking_shutdown_rates'].replace(',', '/')}"
    if problem == "socdag":
        rate, noise = (train[key].replace(",", "-") for key in ("stream_rate_per_ms", "stream_noise"))
        return f"generated streams of {train['stream_jobs']} jobs at {rate} jobs/ms, run-time noise std {noise}, {train.get('binding', 'early')} binding"
    if problem == "llmrouting":
        generator = RoutingGenerator()
        return (
            f"generated workloads of {generator.n_requests} requests (ShareGPT lengths with prompts x{'/'.join(map(str, generator.prompt_scales))}, "
            f"gamma arrivals, shared prefixes) at {generator.load[0]:g}-{generator.load[1]:g} of capacity on "
            f"{', '.join(map(str, generator.replica_counts))} replicas" + _clusters_in_words(train.get("routing_clusters", ""))
        )
    if problem == "memmap":
        families = train.get("trace_families", ",".join(TraceGenerator.families)).split(",")
        return f"traced generated {' and '.join(families)} models (other families held out)"
    raise ValueError(f"no training description for problem {problem!r}")


def _clusters_in_words(clusters: str) -> str:
    names = ["Llama-1B H100" if name == "" else name for name in clusters.split(",")]
    return "" if names == ["Llama-1B H100"] else f" of clusters {', '.join(names)}"


def _figures_file() -> dict:
    return json.loads((resources.files("schedgym.agents") / "policies" / FIGURES_FILE).read_text())


def figures_source() -> str:
    """Where the leaderboard figures come from (the run that measured them)."""
    return _figures_file()["source"]


def policy_zoo() -> list[ZooEntry]:
    """Every shipped policy, read from its checkpoint's metadata and the shipped figures file."""
    figures = _figures_file()["policies"]
    zoo = []
    for name in SHIPPED_POLICIES:
        metadata = read_metadata(resolve_policy_path(name))
        zoo.append(ZooEntry(name, metadata.problem, _trained_on(metadata.problem, metadata.train), metadata.num_timesteps, metadata.where_trained, figures.get(name, [])))
    return zoo
