"""The batched socdag engine follows SocDagEnv slot by slot, auto-resets, rejects bad actions, and serves SB3."""

import numpy as np
import pytest
from sb3_contrib import MaskablePPO

from schedgym.agents.policy import GnnMaskablePolicy
from schedgym.envs.socdag import SocDagEnv, StreamGenerator, load_instance, stream_instance, validate
from schedgym.envs.socdag.batched import SocDagBatch
from schedgym.envs.vector import make_vec_env

MIXED = [stream_instance(40.0, 12, 0.2, seed=0), stream_instance(80.0, 20, 0.3, seed=1), load_instance("topcuoglu2002")]


@pytest.mark.parametrize(("mode", "binding"), [("pair", "early"), ("order", "early"), ("pair", "late")])
def test_every_slot_follows_the_single_env(mode, binding):
    batch = SocDagBatch(MIXED, n_envs=4, mode=mode, binding=binding, seed=3)
    observation = batch.reset()
    envs = []
    for b in range(batch.n_envs):
        env = SocDagEnv(batch.instances[b], mode=mode, binding=binding, max_pes=batch.encoder.max_pes)
        env.reset(seed=0)
        envs.append(env)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(400):
        for b, env in enumerate(envs):
            for key, value in env._obs.items():
                np.testing.assert_array_equal(observation[key][b], value, err_msg=f"slot {b}, {key}")
        scheduling = list(batch.instances)
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in batch.action_masks()])
        single = [env.step(int(a)) for env, a in zip(envs, actions)]
        observation, reward, done, infos = batch.step(actions)
        for b, (_, env_reward, terminated, _, env_info) in enumerate(single):
            assert reward[b] == pytest.approx(env_reward, rel=1e-6, abs=1e-9)
            assert done[b] == terminated
            if terminated:
                finished += 1
                assert infos[b]["objective"] == env_info["objective"]
                assert validate(scheduling[b], infos[b]["solution"]) == []
                envs[b] = SocDagEnv(batch.instances[b], mode=mode, binding=binding, max_pes=batch.encoder.max_pes)
                envs[b].reset(seed=0)
    assert finished >= 2  # slots were reset with fresh (and differently sized) instances on the way


def test_bad_actions_are_refused_with_the_legal_ones():
    batch = SocDagBatch(MIXED, n_envs=2, binding="early", seed=0)
    batch.reset()
    with pytest.raises(ValueError, match="one action per slot"):
        batch.step(np.zeros(3, dtype=np.int64))
    actions = np.array([int(np.flatnonzero(mask)[0]) for mask in batch.action_masks()])
    actions[1] = batch.wait_action  # waiting needs late binding
    with pytest.raises(ValueError, match=r"invalid action .* in slot 1: the legal actions there are \["):
        batch.step(actions)


def test_maskable_ppo_trains_on_the_batched_socdag_env():
    env = make_vec_env("socdag", StreamGenerator(n_jobs=2), n_envs=8, seed=0, mode="pair", binding="late")
    model = MaskablePPO(
        GnnMaskablePolicy, env, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu",
        policy_kwargs={"problem": "socdag", "mode": "pair", "binding": "late", "gnn": {"hidden_dim": 8, "n_layers": 1, "head_hidden_dim": 8}},
    )
    model.learn(256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) > 0
