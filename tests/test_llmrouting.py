import dataclasses

import numpy as np
import pytest

from schedgym.baselines.llmrouting import ROUTERS, Router
from schedgym.envs import InstanceFormatError
from schedgym.envs.llmrouting import kernels
from schedgym.envs.llmrouting import (
    LatencyProfile,
    ReplicaSpec,
    RoutingInstance,
    RoutingSolution,
    ServingSimulator,
    generated_instance,
    Workload,
    load_azure_csv,
    load_mooncake_jsonl,
    load_sharegpt_lengths,
    metrics,
    resolve_suite,
    validate,
)

PROFILE = LatencyProfile.load()


def _instance(workload, n=2, **spec):
    return RoutingInstance("t", workload, (ReplicaSpec(**spec),) * n, PROFILE)


def test_profile_reads_the_measured_points_and_extends_them():
    assert PROFILE.prefill_time_s(512) == pytest.approx(3.2261e-3)
    assert PROFILE.decode_time_s(32, 1024) == pytest.approx(2.2382e-3)
    assert PROFILE.decode_time_s(8192, 1024) > PROFILE.decode_time_s(256, 1024)
    assert PROFILE.prefill_time_s(8192) > PROFILE.prefill_time_s(4096)
    mixed = PROFILE.iteration_time_s(512, 32, 1024)
    assert mixed == pytest.approx(2.2382e-3 + 3.2261e-3 - 1.9211e-3)


def test_trace_windows_are_consecutive_blocks_of_its_requests():
    trace = load_mooncake_jsonl()
    first, second = trace.window(0, 1000), trace.window(1000, 1000)
    assert np.array_equal(first.arrival_s, trace.head(1000).arrival_s) and first.prefix_ids == trace.prefix_ids[:1000]
    assert np.array_equal(np.concatenate([first.prompt_tokens, second.prompt_tokens]), trace.prompt_tokens[:2000])
    assert second.arrival_s[0] == trace.arrival_s[1000] and second.prefix_ids[0] == trace.prefix_ids[1000]
    with pytest.raises(ValueError, match=f"cannot start at request {trace.n_requests}"):
        trace.window(trace.n_requests, 10)


def test_scalar_decode_time_equals_the_vector_one_inside_and_beyond_the_measured_grid():
    for batch in (0, 1, 3, 48, 256, 700):
        contexts = np.array([1.0, 100.0, 256.0, 900.0, 4096.0, 20000.0])
        assert [PROFILE.decode_time_s(batch, c) for c in contexts] == PROFILE.decode_times_s(batch, contexts).tolist()


def test_one_request_alone_gets_prefill_then_one_decode_per_token():
    workload = Workload("one", np.array([0.0]), np.array([512]), np.array([5]))
    inst = _instance(workload, n=1)
    solution = Router("rr").solve(inst)
    assert solution.first_token_s[0] == pytest.approx(PROFILE.prefill_time_s(512))
    decodes = sum(PROFILE.decode_time_s(1, 512 + k) for k in range(4))
    assert solution.finish_s[0] == pytest.approx(PROFILE.prefill_time_s(512) + decodes)
    assert validate(workload, solution) == []


@pytest.mark.parametrize("kv_blocks", [900, 8192])  # small KV: preemptions happen; large: long runs that arrivals cut
def test_fast_forwarded_decoding_equals_iterating_one_by_one(kv_blocks):
    workload = load_azure_csv().head(300).at_rate(60.0)
    inst = _instance(workload, n=2, kv_blocks=kv_blocks)

    def run(fast: bool) -> ServingSimulator:
        sim = ServingSimulator(inst.workload, list(inst.replicas), inst.profile, fast_forward=fast)
        for r in range(workload.n_requests):
            sim.advance_to(float(workload.arrival_s[r]))
            sim.route(r, r % 2)
        sim.run_to_completion()
        return sim

    fast, slow = run(True), run(False)
    planned, served = int(fast.state.counts[kernels.RUNS_PLANNED]), int(fast.state.counts[kernels.RUN_PARTS])
    assert slow.state.counts[kernels.RUNS_PLANNED] == 0
    if kv_blocks == 900:
        assert slow.preemptions.sum() > 0 and planned > 0
    else:
        assert served > planned > 0  # arrivals cut planned runs, served in several parts
    assert np.allclose(fast.finish_s, slow.finish_s, rtol=0, atol=1e-9)
    assert np.allclose(fast.first_token_s, slow.first_token_s, rtol=0, atol=1e-9)
    assert np.array_equal(fast.preemptions, slow.preemptions)


def test_a_replica_served_ahead_on_a_copy_matches_a_run_where_nothing_arrives_later():
    import copy

    workload = load_azure_csv().head(80).at_rate(40.0)
    sim = _instance(workload, n=2).simulator()
    for r in range(40):
        sim.advance_to(float(workload.arrival_s[r]))
        sim.route(r, r % 2)
    sim.advance_to(float(workload.arrival_s[40]))
    clocks = [replica.clock_s for replica in sim.replicas]
    first, whole = copy.deepcopy(sim), copy.deepcopy(sim)
    for ahead in (first, whole):
        ahead.route(40, 0)
    first.run_replica(0, until_first_token_of=40)
    whole.run_replica(0)
    assert not np.isnan(first.first_token_s[40]) and np.isnan(first.finish_s[40])
    assert [replica.clock_s for replica in sim.replicas] == clocks and whole.replicas[1].clock_s == clocks[1]  # the copies only
    reference = _instance(workload.head(41), n=2).simulator()  # the same routing, and no request after request 40
    for r in range(41):
        reference.advance_to(float(workload.arrival_s[r]))
        reference.route(r, r % 2)
    reference.run_to_completion()
    at_zero = reference.replica == 0
    assert first.first_token_s[40] == pytest.approx(reference.first_token_s[40], abs=1e-12)
    assert np.allclose(whole.finish_s[:41][at_zero], reference.finish_s[at_zero], rtol=0, atol=1e-12)
    assert np.isnan(whole.finish_s[:41][~at_zero]).sum() > 0  # replica 1's requests were left unserved


def test_prefix_cache_skips_shared_prefill():
    prefix = (1, 2, 3)
    workload = Workload("shared", np.array([0.0, 1.0]), np.array([2000, 2000]), np.array([2, 2]), (prefix, prefix), prefix_block_tokens=512)
    cached = Router("rr").solve(_instance(workload, n=1))
    uncached = Router("rr").solve(_instance(workload, n=1, prefix_cache=False))
    ttft = lambda s: s.first_token_s[1] - 1.0  # noqa: E731
    assert ttft(cached) < ttft(uncached)
    assert ttft(cached) == pytest.approx(PROFILE.prefill_time_s(2000 - 3 * 512))


@pytest.mark.parametrize("name", list(ROUTERS))
def test_every_router_serves_every_request_validly_and_reproducibly(name):
    workload = load_mooncake_jsonl().head(150).at_rate(8.0)
    inst = _instance(workload, n=3, kv_blocks=12000)
    first, second = Router(name).solve(inst, seed=1), Router(name).solve(inst, seed=1)
    assert validate(workload, first) == []
    assert np.array_equal(first.replica, second.replica) and np.array_equal(first.finish_s, second.finish_s)
    values = metrics(workload, first)
    assert values["ttft_p99_s"] >= values["ttft_mean_s"] * 0 and values["e2e_mean_s"] > values["ttft_mean_s"]
    assert 0.0 <= values["slo_attainment"] <= 1.0


def test_prefix_aware_sends_shared_prefixes_to_the_same_replica():
    prefix = (7, 8)
    workload = Workload("p", np.arange(6) * 0.5, np.full(6, 1100), np.full(6, 3), (prefix,) * 6)
    solution = Router("prefix-aware").solve(_instance(workload, n=3))
    assert len(set(solution.replica[1:].tolist())) == 1 and solution.replica[1] == solution.replica[0]


def test_validator_names_violations():
    workload = Workload("w", np.array([0.0, 1.0]), np.array([10, 10]), np.array([3, 1]))
    good = RoutingSolution(np.array([0, 1]), np.array([0.1, 1.1]), np.array([0.2, 1.1]), 2, 0.01)
    assert validate(workload, good) == []
    for words, bad in {
        "does not exist": dataclasses.replace(good, replica=np.array([0, 5])),
        "not after its arrival": dataclasses.replace(good, first_token_s=np.array([0.0, 1.1])),
        "faster than": dataclasses.replace(good, finish_s=np.array([0.105, 1.1])),
        "never served": dataclasses.replace(good, finish_s=np.array([np.nan, 1.1])),
    }.items():
        assert any(words in v for v in validate(workload, bad)), words


def test_loaders_reject_malformed_traces(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,abc,4\n")
    with pytest.raises(InstanceFormatError, match="line 2"):
        load_azure_csv(bad_csv)
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"timestamp": 0, "input_length": 5}\n')
    with pytest.raises(InstanceFormatError, match="line 1"):
        load_mooncake_jsonl(bad_jsonl)
    sharegpt = load_sharegpt_lengths(500, 10.0, seed=0, arrivals="gamma", cv=3.0)
    gaps = np.diff(sharegpt.arrival_s)
    assert gaps.std() / gaps.mean() > 1.5  # bursty


def test_replica_that_cannot_hold_the_longest_request_is_refused():
    workload = Workload("long", np.array([0.0]), np.array([5000]), np.array([10]))
    with pytest.raises(ValueError, match="kv_blocks"):
        ServingSimulator(workload, [ReplicaSpec(kv_blocks=10)], PROFILE)


def test_env_passes_check_env_and_its_return_is_the_mean_latency():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from schedgym.envs.llmrouting import LlmRoutingEnv, make_instance

    inst = make_instance(load_azure_csv().head(60), 0.9, 3, "small")
    env = LlmRoutingEnv(inst, max_replicas=4)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs["action_mask"].tolist() == [1, 1, 1, 0]
    with pytest.raises(ValueError, match="invalid action"):
        env.step(3)
    total, done = 0.0, False
    while not done:
        obs, reward, done, _, info = env.step(env.action_space.sample())
        total += reward
    assert validate(inst.workload, info["solution"]) == []
    assert -total == pytest.approx(info["metrics"]["e2e_mean_s"])
    assert "schedgym/LlmRouting-v0" in gym.registry


def test_bench_runs_llmrouting_routers_with_the_issue_metrics():
    from schedgym.bench import BenchRun, run_bench

    rows = run_bench([BenchRun("llmrouting", "azure-conv-moderate-4", ["rr", "least-outstanding"])], progress=False)["rows"]
    assert all(r["valid"] for r in rows) and len(rows) == 2
    for row in rows:
        assert set(row["metrics"]) == {"ttft_mean_s", "ttft_p99_s", "tpot_mean_s", "e2e_mean_s", "e2e_p99_s", "slo_attainment", "throughput_rps"}
        assert row["objective"] == row["metrics"]["e2e_mean_s"]


def test_router_network_scores_any_number_of_replicas_and_checks_its_input():
    import torch

    from schedgym.agents.gnn import GnnConfig
    from schedgym.agents.gnn_llmrouting import LlmRoutingGnn
    from schedgym.agents.rollout import run_policy, stack_observations
    from schedgym.envs.llmrouting import LlmRoutingEnv, generated_instance

    torch.manual_seed(0)
    net = LlmRoutingGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16)).eval()
    small, large = generated_instance(1, n_requests=40, n_replicas=2), generated_instance(2, n_requests=40, n_replicas=6)
    observations = [LlmRoutingEnv(inst, max_replicas=8).reset(seed=0)[0] for inst in (small, large)]
    logits, value = net(stack_observations(observations))
    assert logits.shape == (2, 8) and value.shape == (2,)
    assert (logits[0, 2:] < -1e8).all() and (logits[1, 6:] < -1e8).all()
    alone, _ = net(stack_observations(observations[1:]))
    assert torch.allclose(alone[0, :6], logits[1, :6], atol=1e-5)
    with pytest.raises(ValueError, match="replica_features"):
        bad = stack_observations(observations)
        bad["replica_features"] = bad["replica_features"][..., :3]
        net(bad)
    for inst, solution in zip((small, large), run_policy(net, [small, large], problem="llmrouting")):
        assert validate(inst.workload, solution) == []


def test_bench_plots_write_a_latency_cdf_per_instance(tmp_path):
    from PIL import Image

    from schedgym.bench import BenchRun, run_bench
    from schedgym.pictures import write_plots

    result = run_bench([BenchRun("llmrouting", "azure-conv-moderate-4", ["rr", "jsq-tokens"])], progress=False, keep_solutions=True)
    written = write_plots(result, tmp_path)
    cdf = [p for p in written if p.name.endswith("_comparison.png")]
    assert len(cdf) == 1
    pixels = np.asarray(Image.open(cdf[0]).convert("L"), dtype=float)
    assert pixels.std() > 10  # not blank


def test_a_trace_file_runs_as_a_suite_at_the_given_load_and_replicas(tmp_path):
    from typer.testing import CliRunner

    from schedgym.cli import app

    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"] + [f"2023-11-16 18:15:{10 + k:02d}.0000000,{300 + 7 * k},{20 + k}" for k in range(40)]
    trace = tmp_path / "mini.csv"
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "rows.json"
    result = CliRunner().invoke(app, ["bench", "--problem", "llmrouting", "--suite", str(trace), "--solvers", "rr,llumnix", "--load", "0.5", "--replicas", "3", "--json", str(out), "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    import json

    rows = json.loads(out.read_text())["rows"]
    assert [r["instance"] for r in rows] == ["mini-0.5-3", "mini-0.5-3"] and all(r["valid"] for r in rows)
    assert (tmp_path / "plots" / f"llmrouting_{str(trace).replace('/', '_')}_mini-0.5-3_comparison.png").exists()  # drawn on the instance that ran


def test_router_demonstrations_replay_to_the_heuristic_routing():
    from schedgym.agents.imitation import collect_router_demonstrations
    from schedgym.envs.llmrouting import LlmRoutingEnv, RoutingGenerator

    generator = RoutingGenerator(n_requests=50, replica_counts=(3,))
    demos = collect_router_demonstrations(generator, 1, seed=5, router="llumnix")
    env = LlmRoutingEnv(generator)
    env.reset(seed=5)
    for action in demos.actions.tolist():
        _, _, done, _, info = env.step(action)
    assert done
    expected = Router("llumnix").solve(env.instance)
    assert np.array_equal(info["solution"].replica, expected.replica)
    assert demos.returns[0] == pytest.approx(-info["metrics"]["e2e_mean_s"], rel=1e-6)


def test_shipped_router_policy_routes_validly_and_deterministically():
    from schedgym.agents.checkpoint import read_metadata, resolve_policy_path
    from schedgym.registry import make_solver

    assert read_metadata(resolve_policy_path("llmrouting-default")).problem == "llmrouting"
    solver = make_solver("llmrouting", "ppo")
    for instance in (generated_instance(7, n_requests=120, n_replicas=3), resolve_suite("azure-conv-moderate-4")[0]):
        first, second = solver.solve(instance), solver.solve(instance)
        assert validate(instance.workload, first) == []
        assert np.array_equal(first.replica, second.replica)
        assert len(set(first.replica.tolist())) > 1  # it spreads the load


def test_a_simulator_pickles_mid_run_and_serves_on_identically():
    import pickle

    inst = resolve_suite("azure-conv-moderate-4")[0]
    inst = dataclasses.replace(inst, workload=inst.workload.head(200))
    sim = inst.simulator()
    arrivals = inst.workload.arrival_s
    for request in range(100):
        sim.advance_to(float(arrivals[request]))
        sim.route(request, request % 4)
    twin = pickle.loads(pickle.dumps(sim))
    for copy in (sim, twin):
        for request in range(100, 200):
            copy.advance_to(float(arrivals[request]))
            copy.route(request, request % 4)
        copy.run_to_completion()
    np.testing.assert_array_equal(sim.finish_s, twin.finish_s)
    assert twin.done and not np.shares_memory(sim.finish_s, twin.finish_s)
    from schedgym.envs.llmrouting import LlmRoutingEnv

    env = LlmRoutingEnv(inst)  # SB3 pickles the action space, which holds the env, into every checkpoint
    env.reset(seed=0)
    env.step(0)
    assert pickle.loads(pickle.dumps(env.action_space)).n == env.action_space.n
