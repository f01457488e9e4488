import dataclasses

import numpy as np
import pytest
import torch

from schedgym.baselines.llmrouting import Router
from schedgym.envs.llmrouting import LatencyProfile, ReplicaSpec, RoutingInstance, ServingSimulator, load_azure_csv, validate
from schedgym.replay.llm_engine import LlamaConfig, LlmEngine, batch_bucket, page_bucket
from schedgym.replay.llm_replay import build_engine, calibrate_llm_profile, replay_routing

PROFILE = LatencyProfile.load()
TINY = LlamaConfig.tiny()
SPEC = ReplicaSpec(kv_blocks=96, block_tokens=16, token_budget=256, max_batch=8)


def _workload(n: int, rate_rps: float):
    """The first ``n`` Azure conversation requests, prompts cut to 300 tokens and outputs to 30."""
    azure = load_azure_csv().head(n)
    return dataclasses.replace(azure, prompt_tokens=np.minimum(azure.prompt_tokens, 300), output_tokens=np.minimum(azure.output_tokens, 30)).at_rate(rate_rps)


def _route(sim: ServingSimulator, replicas: np.ndarray) -> ServingSimulator:
    for request, replica in enumerate(replicas.tolist()):
        sim.advance_to(float(sim.workload.arrival_s[request]))
        sim.route(request, replica)
    sim.run_to_completion()
    return sim


class ProfileExecutor:
    """The profile as an explicit executor, recording what the simulator hands it."""

    def __init__(self) -> None:
        self.released: list[tuple[int, int]] = []

    def run_iteration(self, replica: int, chunks: np.ndarray, decodes: np.ndarray) -> float:
        mean_context = float(decodes[:, 1].mean()) if len(decodes) else 0.0
        return PROFILE.iteration_time_s(int(chunks[:, 2].sum()), len(decodes), mean_context)

    def release(self, replica: int, request: int) -> None:
        self.released.append((replica, request))


def test_profile_executor_gives_the_simulation_without_executor():
    workload = load_azure_csv().head(300).at_rate(60.0)
    replicas = [ReplicaSpec(kv_blocks=900)] * 2  # small KV: preemptions happen
    routing = np.arange(workload.n_requests) % 2
    plain = _route(ServingSimulator(workload, replicas, PROFILE), routing)
    executor = ProfileExecutor()
    hooked = _route(ServingSimulator(workload, replicas, PROFILE, executor=executor), routing)
    assert plain.preemptions.sum() > 0
    assert np.allclose(hooked.finish_s, plain.finish_s, rtol=0, atol=1e-9)
    assert np.allclose(hooked.first_token_s, plain.first_token_s, rtol=0, atol=1e-9)
    assert np.array_equal(hooked.preemptions, plain.preemptions)
    assert len(executor.released) == workload.n_requests + int(hooked.preemptions.sum())


def test_executor_needs_speed_one():
    with pytest.raises(ValueError, match="speed 1.0"):
        ServingSimulator(_workload(2, 10.0), [ReplicaSpec(speed=2.0)], PROFILE, executor=ProfileExecutor())


def test_chunked_prefill_and_paged_decode_match_one_full_prefill():
    engine = LlmEngine(TINY, [SPEC, SPEC])
    full = engine.logits(0, np.array([[7, 0, 41]]), [])
    engine.logits(1, np.array([[7, 0, 25]]), [])
    chunked = engine.logits(1, np.array([[7, 25, 16]]), [])
    assert torch.allclose(chunked, full, atol=1e-4)
    # replica 0 decodes request 7 at position 41 with another request's chunk and decode in the batch;
    # replica 1 prefills the 42 tokens at once
    engine.logits(0, np.array([[8, 0, 70]]), [])
    mixed = engine.logits(0, np.array([[9, 0, 20]]), np.array([[7, 41], [8, 70]]))
    engine.release(1, 7)
    whole = engine.logits(1, np.array([[7, 0, 42]]), [])
    assert torch.allclose(mixed[1], whole[0], atol=1e-4)
    assert torch.isfinite(mixed).all()


def test_engine_replay_serves_the_routing_log():
    workload = _workload(20, 40.0)
    instance = RoutingInstance("azure-20", workload, (SPEC, SPEC), PROFILE)
    simulated = Router("jsq-tokens").solve(instance)
    report, measured = replay_routing(instance, simulated, device="cpu", config=TINY)
    assert np.array_equal(measured.replica, simulated.replica)
    assert np.isfinite(measured.first_token_s).all() and np.isfinite(measured.finish_s).all()
    assert (measured.first_token_s > workload.arrival_s).all() and (measured.finish_s >= measured.first_token_s).all()
    assert validate(workload, measured) == []
    assert report.n_requests == 20 and report.iterations > 20
    assert 0 < report.busy_s <= report.wall_s
    assert set(report.error_pct) == set(report.simulated) == set(report.replayed) == {"ttft_mean_s", "ttft_p99_s", "e2e_mean_s", "e2e_p99_s"}


def test_a_preempted_request_frees_its_blocks_and_slot():
    engine = LlmEngine(TINY, [SPEC])
    engine.run_iteration(0, np.array([[3, 0, 40]]), [])
    assert engine.blocks_in_use(0) == 3 and engine.requests_held(0) == [3]
    engine.release(0, 3)
    assert engine.blocks_in_use(0) == 0 and engine.requests_held(0) == []

    workload = _workload(20, 200.0)
    small = ReplicaSpec(kv_blocks=40, block_tokens=16, token_budget=256, max_batch=8)
    engine = LlmEngine(TINY, [small, small])
    released = []

    def release(replica: int, request: int) -> None:
        LlmEngine.release(engine, replica, request)
        released.append(request)
        assert request not in engine.requests_held(replica)

    engine.release = release
    sim = _route(ServingSimulator(workload, [small, small], PROFILE, executor=engine), np.arange(20) % 2)
    assert sim.preemptions.sum() > 0 and sim.done
    assert len(released) == workload.n_requests + int(sim.preemptions.sum())
    assert engine.blocks_in_use(0) == engine.blocks_in_use(1) == 0


def test_calibrated_profile_loads_and_grows_with_prefill_tokens(tmp_path):
    path = tmp_path / "profile.json"
    written = calibrate_llm_profile("cpu", TINY, path, prefill_tokens=(16, 256, 2048), decode_batches=(1, 8), decode_contexts=(64, 512), repeats=3, warmups=1)
    profile = LatencyProfile.load(path)
    assert profile.prefill_tokens.tolist() == [16, 256, 2048] and set(written["decode_ms"]) == {"1x64", "8x64", "1x512", "8x512"}
    assert (np.diff(profile.prefill_s) > 0).all()
    assert (profile.decode_s > 0).all() and profile.description["torch"] == torch.__version__


def test_buckets_cover_and_devices_are_checked():
    assert [batch_bucket(b) for b in (1, 3, 32, 33, 250)] == [1, 4, 32, 64, 256]
    assert [page_bucket(p) for p in (1, 17, 128, 129, 1000)] == [16, 32, 128, 144, 1024]
    with pytest.raises(ValueError, match="unknown device"):
        LlmEngine(TINY, [SPEC], device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="--device cpu"):
            LlmEngine(TINY, [SPEC], device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_replay_on_cuda_uses_graphs_and_serves_every_request():
    workload = _workload(20, 40.0)
    instance = RoutingInstance("azure-20", workload, (SPEC, SPEC), PROFILE)
    simulated = Router("rr").solve(instance)
    engine = build_engine(instance, device="cuda", config=TINY)
    report, measured = replay_routing(instance, simulated, device="cuda", config=TINY, engine=engine)
    assert engine.n_graphs > 0 and validate(workload, measured) == []
    assert np.array_equal(measured.replica, simulated.replica) and report.busy_s > 0
