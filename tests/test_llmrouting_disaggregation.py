"""llmrouting disaggregation: prefill replicas hand requests to decode replicas over a link (DistServe)."""

import numpy as np
import pytest

from schedgym.baselines.llmrouting import Router
from schedgym.envs.llmrouting import LINKS, LatencyProfile, ReplicaSpec, RoutingInstance, ServingSimulator, Workload, validate
from schedgym.envs.llmrouting.solution import metrics
from schedgym.envs.llmrouting.suites import base_workload, make_instance, resolve_suite

H100_8B = LatencyProfile.load("profile_h100_llama8b.json")
PREFILL, DECODE = ReplicaSpec(profile=H100_8B, role="prefill"), ReplicaSpec(profile=H100_8B, role="decode")


def test_a_request_prefills_on_one_replica_and_decodes_on_another_once_its_kv_cache_arrives():
    workload = Workload("one", np.array([0.0]), np.array([1000]), np.array([20]))
    sim = ServingSimulator(workload, [PREFILL, DECODE], H100_8B, link=LINKS["pcie"])
    sim.route(0, 0)
    sim.run_to_completion()
    first_s = H100_8B.prefill_time_s(1000)
    assert sim.first_token_s[0] == pytest.approx(first_s)
    copy_s = LINKS["pcie"].latency_s + 1000 * H100_8B.kv_bytes_per_token / LINKS["pcie"].bandwidth_bytes_per_s
    assert sim.state.ready_s[0] == pytest.approx(first_s + copy_s)
    decode_s = sum(H100_8B.decode_time_s(1, 1000 + k) for k in range(19))
    assert sim.finish_s[0] == pytest.approx(first_s + copy_s + decode_s)
    assert sim.replica[0] == 1 and sim.state.held_at[0] == -1 and sim.generated[0] == 20
    assert [r.free_blocks for r in sim.replicas] == [8192, 8192]


def test_routing_respects_the_roles_and_names_the_fix():
    workload = Workload("two", np.array([0.0, 0.0]), np.array([100, 100]), np.array([5, 5]))
    sim = ServingSimulator(workload, [PREFILL, DECODE, DECODE], H100_8B, link=LINKS["nvlink"])
    with pytest.raises(ValueError, match="decode replica and takes no arrivals; route to one of \\[0\\]"):
        sim.route(0, 1)
    with pytest.raises(ValueError, match="must be a decode replica"):
        sim.route(0, 0, decode_replica=0)
    sim.route(0, 0, decode_replica=2)
    sim.route(1, 0, decode_replica=1)
    sim.run_to_completion()
    assert sim.replica.tolist() == [2, 1] and (sim.generated == 5).all()
    with pytest.raises(ValueError, match="needs both prefill and decode replicas"):
        ServingSimulator(workload, [PREFILL, PREFILL], H100_8B, link=LINKS["nvlink"])
    with pytest.raises(ValueError, match="give a link"):
        ServingSimulator(workload, [PREFILL, DECODE], H100_8B)
    with pytest.raises(ValueError, match="unknown replica role"):
        ReplicaSpec(role="verify")


def test_a_prefill_replica_whose_memory_is_held_by_handed_requests_waits_for_the_decode_replicas():
    # room for three prompts: the fourth waits until a decode replica pulls one KV cache away
    workload = Workload("queue", np.zeros(12), np.full(12, 1000), np.full(12, 40))
    small = ReplicaSpec(profile=H100_8B, role="prefill", kv_blocks=200)
    sim = ServingSimulator(workload, [small, ReplicaSpec(profile=H100_8B, role="decode", max_batch=2)], H100_8B, link=LINKS["network"])
    for request in range(12):
        sim.route(request, 0)
    sim.run_to_completion()
    instance = RoutingInstance("queue", workload, tuple(sim.specs), H100_8B)
    assert validate(workload, instance.solution_of(sim)) == []
    assert (sim.generated == 40).all() and [r.free_blocks for r in sim.replicas] == [200, 8192]
    assert np.diff(np.sort(sim.first_token_s)).max() > 5 * H100_8B.prefill_time_s(1000)  # a prefill waited for memory


def test_a_disaggregated_run_matches_stepping_every_iteration():
    instance = resolve_suite("sharegpt-poisson-pd-high-4")[0]
    workload = instance.workload.window(0, 500)
    runs = []
    for fast_forward in (True, False):
        sim = ServingSimulator(workload, list(instance.replicas), instance.profile, fast_forward=fast_forward, link=instance.link)
        for request in range(workload.n_requests):
            sim.advance_to(float(workload.arrival_s[request]))
            sim.route(request, request % 2)
        sim.run_to_completion()
        runs.append(sim)
    np.testing.assert_allclose(runs[0].finish_s, runs[1].finish_s, rtol=1e-9)
    np.testing.assert_allclose(runs[0].first_token_s, runs[1].first_token_s, rtol=1e-9)


def test_a_disaggregated_suite_runs_at_the_rate_of_its_gpus_colocated_and_reports_goodput():
    pd = resolve_suite("sharegpt-poisson-pd-high-4")[0]
    colocated = make_instance(base_workload("sharegpt-poisson"), 0.9, 4, "colocated", cluster="h100-8b")
    np.testing.assert_array_equal(pd.workload.arrival_s, colocated.workload.arrival_s)
    assert [r.role for r in pd.replicas] == ["prefill", "prefill", "decode", "decode"] and pd.link == LINKS["nvlink"]
    solution = Router("jsq-tokens").solve(pd)
    assert validate(pd.workload, solution) == [] and set(solution.replica.tolist()) == {2, 3}
    result = metrics(pd.workload, solution)
    assert result["goodput_rps"] == pytest.approx(result["slo_attainment"] * result["throughput_rps"])
    tight = metrics(pd.workload, solution, tpot_slo_s=0.005)
    assert tight["goodput_rps"] < result["goodput_rps"]
