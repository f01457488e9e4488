"""BatchedVecEnv: the batched engine behaves as an SB3 VecEnv, and MaskablePPO trains on it."""

import numpy as np
import pytest
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

from schedgym.agents.policy import GnnMaskablePolicy
from schedgym.envs.jobshop import TaillardGenerator, validate
from schedgym.envs.vector import BatchedVecEnv, make_vec_env


def _vec_env(n_envs: int = 4, seed: int = 0) -> BatchedVecEnv:
    return make_vec_env("jobshop", TaillardGenerator([(6, 6), (8, 5)]), n_envs=n_envs, seed=seed)


def test_observations_are_copies_and_finished_slots_carry_their_terminal_state():
    env = _vec_env()
    observation = env.reset()
    assert set(observation) == set(env.observation_space.spaces)
    assert all(value.shape == (4, *env.observation_space[key].shape) for key, value in observation.items())
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(200):
        masks = get_action_masks(env)
        assert masks.shape == (4, env.action_space.n)
        before = {key: value.copy() for key, value in observation.items()}
        scheduling = list(env.engine.instances)  # a finished slot is given its next instance within the step
        new_observation, reward, done, infos = env.step(np.array([rng.choice(np.flatnonzero(m)) for m in masks]))
        for key in observation:  # stepping again did not touch what the previous step handed out
            np.testing.assert_array_equal(observation[key], before[key])
        assert reward.shape == done.shape == (4,)
        for b in np.flatnonzero(done):
            finished += 1
            terminal = infos[b]["terminal_observation"]
            assert terminal["action_mask"].sum() == 0  # nothing left to dispatch in the finished schedule
            assert infos[b]["episode"]["l"] > 0
            solution = infos[b]["solution"]
            assert validate(scheduling[b], solution) == []
            assert int((solution.start_times + scheduling[b].durations).max()) == infos[b]["makespan"]
        observation = new_observation
    assert finished > 0


def test_seed_gives_the_same_first_observations_and_masking_is_found():
    env = _vec_env()
    assert is_masking_supported(env)
    assert env.get_attr("render_mode") == [None] * 4
    assert env.env_is_wrapped(object) == [False] * 4
    env.seed(7)
    first = env.reset()
    env.seed(7)
    again = env.reset()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    other = env.reset()  # no new seed: the slots draw fresh instances
    assert any(not np.array_equal(first[key], other[key]) for key in first)
    with pytest.raises(ValueError, match="share one engine"):
        env.set_attr("skip_forced", False, indices=[0])


def test_maskable_ppo_trains_on_the_batched_env():
    env = _vec_env(n_envs=8)
    model = MaskablePPO(
        GnnMaskablePolicy, env, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu",
        policy_kwargs={"gnn": {"hidden_dim": 8, "n_layers": 1, "head_hidden_dim": 8}},
    )
    model.learn(256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) > 0  # episodes finished and were reported through info["episode"]


def test_unknown_problem_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="batched engines exist for jobshop, socdag, llmrouting, memmap"):
        make_vec_env("nosuch", "ft06", n_envs=2)
