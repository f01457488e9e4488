"""llmrouting migration: live KV copies between replicas (Llumnix), queue moves, and the llumnix-migrate router."""

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from schedgym.baselines.llmrouting import Router
from schedgym.baselines.llmrouting.migration import LlumnixMigrate, llumnix_pair
from schedgym.baselines.llmrouting.routers import freeness
from schedgym.envs.llmrouting import (
    LatencyProfile, LlmRoutingEnv, MigrationLink, ReplicaSpec, RoutingInstance, ServingSimulator, Workload, resolve_suite, validate,
)
from schedgym.envs.llmrouting.simulator import rebalance_points
from schedgym.envs.llmrouting.solution import metrics

PROFILE = LatencyProfile.load()
SLOW_LINK = MigrationLink(bandwidth_bytes_per_s=1e9, latency_s=0.02)


def one_request(output_tokens: int) -> Workload:
    return Workload("one", np.array([0.0]), np.array([1000]), np.array([output_tokens]))


def test_a_decoding_request_keeps_decoding_at_its_source_during_the_copy_and_resumes_without_recompute():
    # two idle replicas of one profile: moving the request changes nothing but where its tokens come from
    alone = ServingSimulator(one_request(200), [ReplicaSpec()], PROFILE)
    alone.route(0, 0)
    alone.run_to_completion()
    sim = ServingSimulator(one_request(200), [ReplicaSpec(), ReplicaSpec()], PROFILE, link=SLOW_LINK, migration=True)
    sim.route(0, 0)
    sim.advance_to(0.05)
    before, kv_tokens = int(sim.generated[0]), int(sim.kv_tokens[0])
    assert before > 1 and sim.migration_candidate(0, 1) == 0
    assert sim.migrate(0, 1, 0.05) == 0
    copy_s = SLOW_LINK.latency_s + kv_tokens * PROFILE.kv_bytes_per_token / SLOW_LINK.bandwidth_bytes_per_s
    assert sim.replicas[1].free_blocks == 8192 - -(-(kv_tokens + 1) // 16)  # held from the start of the copy
    sim.advance_to(0.05 + copy_s - 1e-6)
    assert sim.replica[0] == 0 and sim.generated[0] > before  # still decoding at the source
    sim.advance_to(0.05 + copy_s + 0.01)
    assert sim.replica[0] == 1 and sim.migration_counts == {"started": 1, "completed": 1, "aborted": 0}
    assert sim.replicas[0].free_blocks == 8192 and sim.preemptions[0] == 0 and sim.prefilled[0] == 1000
    sim.run_to_completion()
    assert sim.generated[0] == 200
    assert sim.finish_s[0] == pytest.approx(alone.finish_s[0])  # the copy overlapped decoding; nothing recomputed
    assert sim.state.incoming.sum() == sim.state.outgoing.sum() == 0


def test_a_copy_is_aborted_when_the_request_finishes_first_and_its_blocks_come_back():
    sim = ServingSimulator(one_request(3), [ReplicaSpec(), ReplicaSpec()], PROFILE, link=MigrationLink(1e9, 1.0), migration=True)
    sim.route(0, 0)
    sim.advance_to(0.004)
    assert sim.generated[0] == 1
    sim.migrate(0, 1, 0.004)
    sim.run_to_completion()
    assert sim.replica[0] == 0 and sim.migration_counts == {"started": 1, "completed": 0, "aborted": 1}
    assert [r.free_blocks for r in sim.replicas] == [8192, 8192] and sim.generated[0] == 3


def test_a_waiting_request_changes_queues_at_once_in_arrival_order():
    workload = Workload("queue", np.array([0.0, 0.0, 0.001, 0.002]), np.full(4, 500), np.full(4, 50))
    sim = ServingSimulator(workload, [ReplicaSpec(max_batch=1), ReplicaSpec(max_batch=1)], PROFILE, link=SLOW_LINK, migration=True)
    for request, replica in enumerate((0, 1, 0, 1)):
        sim.advance_to(float(workload.arrival_s[request]))
        sim.route(request, replica)
    assert sim.replicas[0].waiting.tolist() == [2] and sim.replicas[1].waiting.tolist() == [3]
    assert sim.migration_candidate(0, 1, queued=True) == 2
    sim.migrate(0, 1, 0.002, queued=True)
    assert sim.replica[2] == 1 and sim.replicas[0].waiting.tolist() == [] and sim.replicas[1].waiting.tolist() == [2, 3]
    sim.run_to_completion()
    assert validate(workload, RoutingInstance("queue", workload, tuple(sim.specs), PROFILE).solution_of(sim)) == []
    assert sim.first_token_s[2] < sim.first_token_s[3]


def test_migration_errors_name_the_problem():
    sim = ServingSimulator(one_request(10), [ReplicaSpec(), ReplicaSpec()], PROFILE)
    with pytest.raises(ValueError, match="does not allow migration"):
        sim.migrate(0, 1, 0.0)
    sim = ServingSimulator(one_request(10), [ReplicaSpec(), ReplicaSpec()], PROFILE, link=SLOW_LINK, migration=True)
    with pytest.raises(ValueError, match="does not exist"):
        sim.migrate(0, 2, 0.0)
    with pytest.raises(ValueError, match="nothing can migrate"):
        sim.migrate(0, 1, 0.0, queued=True)
    assert sim.migration_candidate(0, 0) is None
    with pytest.raises(ValueError, match="bandwidth > 0"):
        MigrationLink(0.0, 1e-6)
    with pytest.raises(ValueError, match="kv_bytes_per_token"):
        bare = replace(PROFILE, description={})
        ServingSimulator(one_request(10), [ReplicaSpec(), ReplicaSpec()], bare, link=SLOW_LINK, migration=True)


def test_llumnix_migrate_keeps_every_block_accounted_for_and_matches_stepping_every_iteration():
    instance = resolve_suite("mooncake-conv-kv-high-4")[0]
    workload = instance.workload.window(0, 400)
    runs = []
    for fast_forward in (True, False):
        sim = ServingSimulator(workload, list(instance.replicas), instance.profile, fast_forward=fast_forward, link=instance.link, migration=True)
        arrivals, moved = workload.arrival_s, 0
        for request in range(workload.n_requests):
            if request:
                for point_s in rebalance_points(float(arrivals[0]), float(arrivals[request - 1]), float(arrivals[request])):
                    sim.advance_to(float(point_s))
                    pair = llumnix_pair(sim)
                    if pair is not None:
                        sim.migrate(*pair, float(point_s))
                        moved += 1
                    state = sim.state
                    held = [state.blocks[r.running].sum() + state.migrate_blocks[state.migrate_to == r.index].sum() for r in sim.replicas]
                    assert (np.array(held) + state.free_blocks == sim.tables.kv_blocks).all()
            sim.advance_to(float(arrivals[request]))
            sim.route(request, int(np.argmax(freeness(sim))))
        sim.run_to_completion()
        assert moved > 10 and sim.migration_counts["completed"] + sim.migration_counts["aborted"] == moved
        assert (sim.generated == workload.output_tokens).all() and [r.free_blocks for r in sim.replicas] == sim.tables.kv_blocks.tolist()
        runs.append(sim)
    fast, slow = runs
    assert (fast.replica == slow.replica).all()
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9)


def test_llumnix_migrate_gives_a_valid_reproducible_log_that_beats_llumnix_without_migration_under_kv_pressure():
    instance = resolve_suite("mooncake-conv-kv-high-4")[0]
    first, again = LlumnixMigrate().solve(instance), LlumnixMigrate().solve(instance)
    assert validate(instance.workload, first) == []
    assert (first.finish_s == again.finish_s).all()
    with_migration = metrics(instance.workload, first)
    without = metrics(instance.workload, Router("llumnix").solve(instance))
    assert with_migration["ttft_p99_s"] < without["ttft_p99_s"]


def test_the_env_with_migration_passes_check_env_and_replays_llumnix_migrate_decision_by_decision():
    suite = resolve_suite("mooncake-conv-kv-high-4")[0]
    instance = replace(suite, workload=suite.workload.window(0, 300))
    env = gym.make("schedgym/LlmRouting-v0", instances=[instance], migration=True).unwrapped
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    r = env.encoder.max_replicas
    assert env.action_space.n == r + 2 * r * r and obs["rebalancing"][0] == 0
    total, decisions = 0.0, {"route": 0, "rebalance": 0}
    while True:
        decisions[info["decision"]] += 1
        if info["decision"] == "route":
            assert obs["action_mask"][r:].sum() == 0
            action = int(np.argmax(freeness(env.sim)))
        else:
            assert obs["rebalancing"][0] == 1 and obs["action_mask"][:r].sum() == 0 and obs["action_mask"][r] == 1
            pair = llumnix_pair(env.sim)
            action = r if pair is None else r + pair[0] * r + pair[1]
        obs, reward, terminated, _, info = env.step(action)
        total += reward
        if terminated:
            break
    assert decisions["route"] == 300 and decisions["rebalance"] > 0
    expected = LlumnixMigrate().solve(instance)
    np.testing.assert_array_equal(info["solution"].finish_s, expected.finish_s)
    assert -total == pytest.approx(info["metrics"]["e2e_mean_s"]) and info["migrations"]["completed"] > 0


def test_the_env_with_migration_rejects_an_illegal_action_by_name():
    env = LlmRoutingEnv(resolve_suite("mooncake-conv-kv-high-4")[:1], migration=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action 5: route to a replica"):
        env.step(5)
    with pytest.raises(ValueError, match="rebalance_interval_s must be positive"):
        LlmRoutingEnv("mooncake-conv-kv-high-4", migration=True, rebalance_interval_s=0)
