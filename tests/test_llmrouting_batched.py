"""The batched llmrouting engine follows LlmRoutingEnv slot by slot, auto-resets, rejects bad actions, and serves SB3."""

import numpy as np
import pytest
from sb3_contrib import MaskablePPO

from schedgym.agents.policy import GnnMaskablePolicy
from schedgym.envs.llmrouting import LlmRoutingEnv, RoutingGenerator, validate
from schedgym.envs.llmrouting.batched import LlmRoutingBatch
from schedgym.envs.vector import make_vec_env

SMALL = RoutingGenerator(n_requests=30)


def _single_env(batch: LlmRoutingBatch, b: int) -> tuple[LlmRoutingEnv, dict]:
    env = LlmRoutingEnv(batch.instances[b], max_replicas=batch.encoder.max_replicas)
    observation, _ = env.reset(seed=0)
    return env, observation


def test_every_slot_follows_the_single_env():
    batch = LlmRoutingBatch(SMALL, n_envs=4, seed=2)
    observation = batch.reset()
    envs = [_single_env(batch, b) for b in range(batch.n_envs)]
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(100):
        for b, (_, expected) in enumerate(envs):
            for key, value in expected.items():
                np.testing.assert_array_equal(observation[key][b], value, err_msg=f"slot {b}, {key}")
        routing = list(batch.instances)
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in batch.action_masks()])
        single = [env.step(int(a)) for (env, _), a in zip(envs, actions)]
        observation, reward, done, infos = batch.step(actions)
        for b, (env_observation, env_reward, terminated, _, env_info) in enumerate(single):
            assert reward[b] == pytest.approx(env_reward, rel=1e-6, abs=1e-12)
            assert done[b] == terminated
            envs[b] = (envs[b][0], env_observation)
            if terminated:
                finished += 1
                assert infos[b]["metrics"] == env_info["metrics"]
                assert validate(routing[b].workload, infos[b]["solution"]) == []
                assert infos[b]["episode"]["r"] == pytest.approx(-env_info["metrics"]["e2e_mean_s"], rel=1e-5)
                envs[b] = _single_env(batch, b)
    assert finished >= 4


def test_bad_actions_are_refused():
    batch = LlmRoutingBatch(RoutingGenerator(n_requests=10, replica_counts=(2,)), n_envs=2, max_replicas=4, seed=0)
    batch.reset()
    with pytest.raises(ValueError, match="one replica per slot"):
        batch.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"invalid action 3 in slot 1: choose a replica in 0\.\.1"):
        batch.step(np.array([0, 3]))


def test_maskable_ppo_trains_on_the_batched_llmrouting_env():
    env = make_vec_env("llmrouting", RoutingGenerator(n_requests=20, replica_counts=(2, 4)), n_envs=4, seed=0)
    model = MaskablePPO(
        GnnMaskablePolicy, env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu",
        policy_kwargs={"problem": "llmrouting", "gnn": {"hidden_dim": 8, "n_layers": 1, "head_hidden_dim": 8}},
    )
    model.learn(128)
    assert model.num_timesteps == 128
    assert len(model.ep_info_buffer) > 0
