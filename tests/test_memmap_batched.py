"""The batched memmap engine follows MemoryMappingEnv slot by slot, auto-resets, rejects bad actions, and serves SB3."""

import numpy as np
import pytest
from sb3_contrib import MaskablePPO

from schedgym.agents.policy import GnnMaskablePolicy
from schedgym.envs.memmap import MemoryMappingEnv, resolve_suite, validate
from schedgym.envs.memmap.batched import MemMapBatch
from schedgym.envs.vector import make_vec_env

MIXED = resolve_suite("minimalloc")[:1] + resolve_suite("traced-models")[:3]  # one packing, three mappings


def _single_env(batch: MemMapBatch, b: int) -> MemoryMappingEnv:
    env = MemoryMappingEnv(batch.instances[b], max_buffers=batch.encoder.max_buffers, max_edges=batch.encoder.max_edges)
    env.reset(seed=0)
    return env


def test_every_slot_follows_the_single_env():
    batch = MemMapBatch(MIXED, n_envs=4, seed=1)
    observation = batch.reset()
    envs = [_single_env(batch, b) for b in range(batch.n_envs)]
    expected = [env._observation_copy() for env in envs]
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(300):
        for b in range(batch.n_envs):
            for key, value in expected[b].items():
                np.testing.assert_array_equal(observation[key][b], value, err_msg=f"slot {b}, {key}")
        scheduling = list(batch.instances)
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in batch.action_masks()])
        single = [env.step(int(a)) for env, a in zip(envs, actions)]
        observation, reward, done, infos = batch.step(actions)
        for b, (env_observation, env_reward, terminated, _, env_info) in enumerate(single):
            assert reward[b] == pytest.approx(env_reward, rel=1e-5, abs=1e-9)
            assert done[b] == terminated
            expected[b] = env_observation
            if terminated:
                finished += 1
                assert infos[b]["metrics"] == env_info["metrics"]
                if scheduling[b].packing:  # random packings may end above the capacity, but place every buffer
                    assert infos[b]["metrics"]["placed_fraction"] == 1.0
                else:
                    assert validate(scheduling[b], infos[b]["solution"]) == []
                envs[b] = _single_env(batch, b)
                expected[b] = envs[b]._observation_copy()
    assert finished >= 4


def test_bad_actions_are_refused_with_the_allowed_ones():
    batch = MemMapBatch(resolve_suite("minimalloc")[:1], n_envs=2, seed=0)
    batch.reset()
    with pytest.raises(ValueError, match="one action per slot"):
        batch.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"invalid action 0 in slot 0: allowed there are \[1"):  # packing: slow is masked
        batch.step(np.zeros(2, dtype=np.int64))


def test_maskable_ppo_trains_on_the_batched_memmap_env():
    env = make_vec_env("memmap", resolve_suite("traced-models")[:2], n_envs=4, seed=0)
    model = MaskablePPO(
        GnnMaskablePolicy, env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu",
        policy_kwargs={"problem": "memmap", "gnn": {"hidden_dim": 8, "n_layers": 1, "head_hidden_dim": 8}},
    )
    model.learn(128)
    assert model.num_timesteps == 128
    assert len(model.ep_info_buffer) > 0
