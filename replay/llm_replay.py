"""Replay an llmrouting routing log on the LLM engine, and calibrate the llmrouting latency profile on it.

A replay runs the :class:`ServingSimulator` with the engine as its iteration executor: the requests arrive at
their trace times and go to the replicas the routing log names, every replica batches as the simulator decides,
and every iteration runs on the model and lasts what it measured. Each replica has its own clock, advanced by the
measured times of its own iterations only (the replicas' iterations run one after another on the device, so they
never slow each other). The simulated times are the routing log's, made with the instance's profile.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from schedgym.atomic import atomic_write_text
from schedgym.envs.llmrouting import ReplicaSpec, RoutingInstance, RoutingSolution, metrics
from schedgym.replay.device import resolve_device
from schedgym.replay.llm_engine import LlamaConfig, LlmEngine
from schedgym.replay.llm_roofline import kv_blocks

#: The grid of the shipped profile: prefill chunk tokens, decode batch sizes and decode contexts.
PREFILL_TOKENS = (16, 64, 128, 256, 512, 1024, 2048, 4096)
DECODE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DECODE_CONTEXTS = (256, 1024, 4096)
COMPARED = ("ttft_mean_s", "ttft_p99_s", "e2e_mean_s", "e2e_p99_s")


@dataclass
class LlmFidelityReport:
    """Simulated against replayed latencies (seconds) of one routing log; errors in % of the simulated value.

    Attributes:
        simulated / replayed: ``ttft_mean_s``, ``ttft_p99_s``, ``e2e_mean_s``, ``e2e_p99_s``.
        error_pct: the same keys, 100 (replayed - simulated) / simulated.
        busy_s: measured seconds of all iterations (device busy time: the GPU's on ``cuda``).
        iterations: iterations run. wall_s: the replay's wall time.
    """

    instance: str
    device: str
    model: str
    n_requests: int
    n_replicas: int
    simulated: dict[str, float]
    replayed: dict[str, float]
    error_pct: dict[str, float]
    busy_s: float
    iterations: int
    wall_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def build_engine(instance: RoutingInstance, *, device: str, config: LlamaConfig, seed: int = 0) -> LlmEngine:
    """An engine for the instance's replicas (reusable by every replay of routing logs of this instance)."""
    return LlmEngine(config, instance.replicas, device=device, seed=seed)


def replay_routing(instance: RoutingInstance, solution: RoutingSolution, *, device: str, config: LlamaConfig,
                   engine: LlmEngine | None = None) -> tuple[LlmFidelityReport, RoutingSolution]:
    """Serve ``instance``'s requests on the engine with ``solution``'s routing; returns the fidelity report and the
    measured routing log (its ``min_decode_s`` the shortest measured iteration).

    Args:
        engine: an engine from :func:`build_engine` to reuse (same device, config and replicas); default: a new one.

    Raises:
        ValueError: an unknown device, a routing log that does not fit the instance, an engine built for other
            replicas, device or config, or replicas of speed other than 1.0.
        RuntimeError: ``cuda`` without a CUDA device.
    """
    n = instance.workload.n_requests
    if np.shape(solution.replica) != (n,) or not ((solution.replica >= 0) & (solution.replica < instance.n_replicas)).all():
        raise ValueError(f"the routing log must name one replica in 0..{instance.n_replicas - 1} for each of the {n} requests of {instance.name}")
    resolve_device(device)
    if engine is None:
        engine = build_engine(instance, device=device, config=config)
    elif engine.replicas != instance.replicas or engine.config != config or engine.device.type != device:
        raise ValueError("the engine was built for other replicas, device or model config; build one with build_engine(instance, ...)")
    engine.reset()
    sim = instance.simulator(executor=engine)
    started = time.perf_counter()
    for request, replica in enumerate(solution.replica.tolist()):
        sim.advance_to(float(instance.workload.arrival_s[request]))
        sim.route(request, replica)
    sim.run_to_completion()
    wall_s = time.perf_counter() - started
    measured = RoutingSolution(sim.replica.copy(), sim.first_token_s.copy(), sim.finish_s.copy(), instance.n_replicas, engine.shortest_s)
    simulated, replayed = ({key: values[key] for key in COMPARED} for values in (metrics(instance.workload, s) for s in (solution, measured)))
    errors = {key: 100.0 * (replayed[key] - simulated[key]) / simulated[key] for key in COMPARED}
    report = LlmFidelityReport(instance.name, device, config.describe(), n, instance.n_replicas, simulated, replayed, errors,
                               engine.busy_s, engine.iterations, wall_s)
    return report, measured


def calibrate_llm_profile(device: str, config: LlamaConfig, out_path: str | Path, *, prefill_tokens: tuple[int, ...] = PREFILL_TOKENS,
                          decode_batches: tuple[int, ...] = DECODE_BATCHES, decode_contexts: tuple[int, ...] = DECODE_CONTEXTS,
                          repeats: int = 20, warmups: int = 3, block_tokens: int = 16, seed: int = 0,
                          progress: Callable[[str], None] | None = None) -> dict:
    """Measure the engine's iterations on the profile grid and write a latency profile JSON to ``out_path`` (read
    by :meth:`LatencyProfile.load`); returns its content.

    ``prefill_ms[T]``: one sequence prefilling T tokens from position 0. ``decode_ms["BxC"]``: one decode of B
    sequences of context C. Each is the median of ``repeats`` timings after ``warmups``, through the engine's own
    iteration path (so CUDA graphs, padding to buckets and timing are those of a replay).

    Raises:
        ValueError: an unknown device. RuntimeError: ``cuda`` without a CUDA device.
    """
    resolve_device(device)
    blocks = max(max(decode_batches) * -(-(max(decode_contexts) + 1) // block_tokens), -(-max(prefill_tokens) // block_tokens))
    engine = LlmEngine(config, [ReplicaSpec(kv_blocks=blocks, block_tokens=block_tokens, max_batch=max(decode_batches))], device=device, seed=seed)
    no_chunks, no_decodes = np.zeros((0, 3), dtype=np.int64), np.zeros((0, 2), dtype=np.int64)

    def median_ms(run: Callable[[], float]) -> float:
        for _ in range(warmups):
            run()
        return round(1e3 * float(np.median([run() for _ in range(repeats)])), 4)

    def prefill(tokens: int) -> float:
        duration_s = engine.run_iteration(0, np.array([[0, 0, tokens]]), no_decodes)
        engine.release(0, 0)
        return duration_s

    prefill_ms = {str(t): median_ms(lambda: prefill(t)) for t in prefill_tokens}
    if progress:
        progress(f"prefill_ms {prefill_ms}")
    decode_ms = {}
    for context in decode_contexts:
        for batch in decode_batches:
            decodes = np.stack([np.arange(batch), np.full(batch, context)], axis=1)
            decode_ms[f"{batch}x{context}"] = median_ms(lambda: engine.run_iteration(0, no_chunks, decodes))
            for request in range(batch):
                engine.release(0, request)
        if progress:
            progress(f"decode_ms at context {context}: {[decode_ms[f'{b}x{context}'] for b in decode_batches]}")
    cuda = engine.device.type == "cuda"
    timing = ("CUDA events around CUDA-graph replays: decode from a graph per batch/block bucket, prefill from a graph of its own"
              if cuda else "time.perf_counter around input upload and forward, eager")
    profile = {
        "model": config.describe(),
        "config": config.to_dict(),
        "gpu": torch.cuda.get_device_name(engine.device) if cuda else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "device": device,
        "torch": torch.__version__,
        "kv_bytes_per_token": config.kv_bytes_per_token,
        "method": (f"schedgym LLM engine (replay/llm_engine.py), median of {repeats} timings after {warmups} warm-ups of its own iterations; {timing}; "
                   f"prefill: one sequence of T tokens from position 0; decode: B sequences of context C; paged KV in blocks of {block_tokens} tokens"),
        "prefill_ms": prefill_ms,
        "decode_ms": decode_ms,
    }
    if cuda:  # the KV blocks a replica of this model holds on this device, sized as the derived profiles are
        profile["kv_blocks"] = kv_blocks(config, torch.cuda.get_device_properties(engine.device).total_memory, block_tokens=block_tokens)
        profile["block_tokens"] = block_tokens
    atomic_write_text(out_path, json.dumps(profile, indent=1) + "\n")
    return profile
