"""llmrouting where memory binds: derived profiles, heterogeneous clusters, the pressure suites."""

import json
from dataclasses import replace
from importlib import resources

import numpy as np
import pytest

from schedgym.baselines.llmrouting import Router
from schedgym.envs.llmrouting import LatencyProfile, ReplicaSpec, RoutingInstance, Workload, resolve_suite, validate
from schedgym.envs.llmrouting.suites import SUITES, cluster_replicas
from schedgym.envs.llmrouting.workload import merge_workloads
from schedgym.replay.llm_engine import LlamaConfig
from schedgym.replay.llm_roofline import GPUS, decode_roofline_s, derived_profiles, kv_blocks

DATA = resources.files("schedgym.envs.llmrouting") / "data"
MEASURED = LatencyProfile.load()
H100_8B = LatencyProfile.load("profile_h100_llama8b.json")
A100_8B = LatencyProfile.load("profile_a100-40gb_llama8b.json")


def test_shipped_derived_profiles_are_what_the_roofline_scaling_writes():
    for name, derived in derived_profiles().items():
        assert json.loads((DATA / name).read_text()) == derived
        assert derived["method"] == "derived"


def test_kv_capacity_is_the_memory_left_after_the_weights_in_blocks():
    config = LlamaConfig.llama_8b()
    assert config.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2  # keys and values, 32 layers, 8 KV heads of 128, bf16
    blocks = kv_blocks(config, GPUS["a100-40gb"].memory_bytes)
    assert blocks == A100_8B.kv_blocks
    free_bytes = 0.9 * GPUS["a100-40gb"].memory_bytes - config.weight_bytes - (2 << 30)
    assert blocks * 16 * config.kv_bytes_per_token <= free_bytes < (blocks + 1) * 16 * config.kv_bytes_per_token
    with pytest.raises(ValueError, match="does not fit"):
        kv_blocks(config, 16 << 30)


def test_a_derived_profile_is_slower_where_the_roofline_is():
    # a larger model on the same GPU, then the same model on a GPU of half the bandwidth: every iteration slower
    for slow, fast in ((H100_8B, MEASURED), (A100_8B, H100_8B)):
        assert (slow.prefill_s > fast.prefill_s).all() and (slow.decode_s > fast.decode_s).all()
    # memory-bound decode at batch 1: the ratio of the two GPUs' times is near their bandwidth ratio
    ratio = A100_8B.decode_time_s(1, 256) / H100_8B.decode_time_s(1, 256)
    bound = decode_roofline_s(LlamaConfig.llama_8b(), GPUS["a100-40gb"], 1, 256) / decode_roofline_s(LlamaConfig.llama_8b(), GPUS["h100-80gb"], 1, 256)
    assert 0.75 * bound < ratio <= bound


def test_each_replica_of_a_heterogeneous_cluster_runs_at_its_own_profile():
    workload = Workload("two", np.array([0.0, 0.0]), np.array([1000, 1000]), np.array([3, 3]))
    instance = RoutingInstance("hetero", workload, (ReplicaSpec(profile=H100_8B), ReplicaSpec(profile=A100_8B)), MEASURED)
    solution = Router("rr").solve(instance)
    assert solution.first_token_s.tolist() == pytest.approx([H100_8B.prefill_time_s(1000), A100_8B.prefill_time_s(1000)])
    decodes = [sum(p.decode_time_s(1, 1000 + k) for k in range(2)) for p in (H100_8B, A100_8B)]
    assert (solution.finish_s - solution.first_token_s).tolist() == pytest.approx(decodes)
    assert validate(workload, solution) == []


def test_replicas_profiles_must_share_one_grid(tmp_path):
    data = json.loads((DATA / "profile_h100_llama1b.json").read_text())
    data["prefill_ms"] = {"16": 1.0, "8192": 40.0}
    path = tmp_path / "coarse.json"
    path.write_text(json.dumps(data))
    workload = Workload("one", np.array([0.0]), np.array([10]), np.array([2]))
    instance = RoutingInstance("grids", workload, (ReplicaSpec(), ReplicaSpec(profile=LatencyProfile.load(path))), MEASURED)
    with pytest.raises(ValueError, match="different grids"):
        instance.simulator()


def test_profile_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="profile_h100_llama8b.json"):
        LatencyProfile.load("profile_nowhere.json")
    data = json.loads((DATA / "profile_h100_llama8b.json").read_text())
    data["kv_blocks"] = -3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="kv_blocks must be a positive integer"):
        LatencyProfile.load(path)


def test_merged_workload_keeps_every_request_and_each_parts_prefixes():
    a = Workload("a", np.array([0.0, 5.0, 10.0]), np.array([10, 20, 30]), np.array([1, 2, 3]))
    b = Workload("b", np.array([0.0, 1.0]), np.array([40, 50]), np.array([4, 5]), prefix_ids=((7,), (7, 8)))
    merged = merge_workloads([a, b], "ab")
    assert sorted(merged.prompt_tokens.tolist()) == [10, 20, 30, 40, 50]
    assert (np.diff(merged.arrival_s) >= 0).all() and merged.arrival_s[-1] == pytest.approx(1.0)
    by_prompt = dict(zip(merged.prompt_tokens.tolist(), merged.prefix_ids))
    assert by_prompt[40] == (7,) and by_prompt[50] == (7, 8) and by_prompt[10] == ()
    assert dict(zip(merged.prompt_tokens.tolist(), merged.output_tokens.tolist())) == {10: 1, 20: 2, 30: 3, 40: 4, 50: 5}
    with pytest.raises(ValueError, match="different token sizes"):
        merge_workloads([a, replace(b, prefix_block_tokens=16)], "x")


def test_pressure_suites_bind_memory_and_mix_replica_kinds():
    assert {"mooncake-conv-kv-high-4", "azure-conv-kv-high-8", "mixed-hetero-high-8"} <= set(SUITES)
    gpus = [spec.profile.description["gpu"] for spec in cluster_replicas("hetero", 4)]
    assert gpus == [H100_8B.description["gpu"], A100_8B.description["gpu"]] * 2
    assert [spec.kv_blocks for spec in cluster_replicas("hetero", 2)] == [H100_8B.kv_blocks, A100_8B.kv_blocks]
    instance = resolve_suite("mooncake-conv-kv-high-4")[0]
    assert all(spec.kv_blocks == A100_8B.kv_blocks for spec in instance.replicas)
    sim = instance.simulator()
    for request, arrival_s in enumerate(instance.workload.arrival_s.tolist()):
        sim.advance_to(arrival_s)
        sim.route(request, request % instance.n_replicas)
    sim.run_to_completion()
    assert sim.preemptions.sum() > 0  # round-robin preempts: the KV cache binds
    assert validate(instance.workload, instance.solution_of(sim)) == []


def test_output_length_predictor_learns_each_sources_mean_and_is_fitted_off_the_suites():
    from schedgym.envs.llmrouting.length_predictor import OutputLengthPredictor, default_predictor, predicted_output_tokens, source_of

    short = Workload("azure-x", np.zeros(40), np.full(40, 100), np.full(40, 10))
    long = Workload("mooncake-x", np.zeros(40), np.full(40, 100), np.full(40, 300))
    predictor = OutputLengthPredictor.fit({"azure": short, "mooncake": long})
    assert predictor.predict(np.array([100, 120]), "azure").tolist() == [10.0, 10.0]
    assert predictor.predict(np.array([100]), "mooncake").tolist() == [300.0]
    assert predictor.predict(np.array([100]), None).tolist() == [155.0]  # unknown source: pooled
    assert predictor.predict(np.array([5000]), "azure").tolist() == [10.0]  # empty bin: the source's mean
    assert source_of("azure-conv-kv-high-4") == "azure" and source_of("generated-3") == "sharegpt" and source_of("trace") is None
    # on the suites' own requests, knowing the source beats one pooled mean
    shipped = default_predictor()
    errors = {}
    for suite in ("azure-conv-kv-high-4", "mooncake-conv-kv-high-4"):
        workload = resolve_suite(suite)[0].workload
        errors[suite] = (np.abs(predicted_output_tokens(workload) - workload.output_tokens).mean(),
                         np.abs(shipped.predict(workload.prompt_tokens, None) - workload.output_tokens).mean())
    assert all(own < pooled for own, pooled in errors.values()), errors
    mixed = resolve_suite("mixed-hetero-high-4")[0].workload
    assert mixed.predicted_output_tokens is not None and len(np.unique(mixed.predicted_output_tokens)) > 3


def test_the_observation_carries_memory_model_speed_and_predicted_work():
    from schedgym.envs.llmrouting.length_predictor import predicted_output_tokens
    from schedgym.graphs.llmrouting import REPLICA_LOAD_FEATURES, LlmRoutingEncoder

    instance = resolve_suite("mixed-hetero-high-8")[0]
    sim = instance.simulator()
    predicted = predicted_output_tokens(instance.workload)
    for request in range(40):
        sim.advance_to(float(instance.workload.arrival_s[request]))
        sim.route(request, request % 8)
    sim.advance_to(float(instance.workload.arrival_s[40]))
    obs = LlmRoutingEncoder(8).encode(sim, 40)
    load = obs["replica_load_features"]
    assert load.shape == (8, len(REPLICA_LOAD_FEATURES))
    assert load[:, 0].tolist() == pytest.approx([spec.kv_blocks / 16384 for spec in instance.replicas])
    assert load[1, 1] > 1.5 * load[0, 1]  # the A100 replica decodes slower than the H100 one
    left = [sum(max(predicted[q] - sim.generated[q], 1.0) for q in np.concatenate([r.waiting, r.running])) / 16384 for r in sim.replicas]
    assert load[:, 2].tolist() == pytest.approx(left, rel=1e-5) and (load[:, 3] == 0).all()
    assert obs["request_load_features"][0] == pytest.approx(predicted[40] / 1024, rel=1e-6)


def test_only_a_policy_built_for_the_load_features_reads_them():
    import torch

    from schedgym.agents.gnn import GnnConfig
    from schedgym.agents.gnn_llmrouting import LlmRoutingGnn
    from schedgym.graphs.llmrouting import LlmRoutingEncoder

    instance = resolve_suite("mixed-hetero-high-8")[0]
    sim = instance.simulator()
    obs = {k: torch.as_tensor(v)[None] for k, v in LlmRoutingEncoder(8).encode(sim, 0).items()}
    changed = dict(obs, replica_load_features=obs["replica_load_features"] + torch.rand_like(obs["replica_load_features"]))
    torch.manual_seed(0)
    for reads, net in ((False, LlmRoutingGnn(GnnConfig())), (True, LlmRoutingGnn(GnnConfig(routing_load_features=True)))):
        same = torch.allclose(net(obs)[0], net(changed)[0])
        assert same != reads


def test_the_training_generator_draws_the_clusters_it_is_given():
    from schedgym.envs.llmrouting.suites import RoutingGenerator

    rng = np.random.default_rng(0)
    drawn = [RoutingGenerator(clusters=("kv", "hetero", "pd"))(rng) for _ in range(12)]
    assert {inst.name.rsplit("-", 1)[1] for inst in drawn} == {"kv", "hetero", "pd"}
    for inst in drawn:
        assert all(spec.profile is not None for spec in inst.replicas)
        assert validate(inst.workload, Router("jsq-tokens").solve(inst)) == []
    with pytest.raises(ValueError, match="unknown clusters"):
        RoutingGenerator(clusters=("tpu",))
