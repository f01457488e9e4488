"""The batched job-shop engine follows JobShopEnv slot by slot, auto-resets, and rejects bad actions."""

import numpy as np
import pytest

from schedgym.envs.jobshop import JobShopEnv, TaillardGenerator, load_benchmark, validate
from schedgym.envs.jobshop.batched import JobShopBatch

MIXED = [load_benchmark("ft06"), load_benchmark("la01"), load_benchmark("ft10")]  # 6x6, 10x5, 10x10


def _single_env(batch: JobShopBatch, slot: int, action_filter: str) -> JobShopEnv:
    env = JobShopEnv(
        [batch.instances[slot]], action_filter=action_filter, skip_forced=batch.skip_forced,
        normalize_reward=batch.normalize_reward, max_jobs=batch.encoder.max_jobs, max_ops=batch.encoder.max_ops,
        max_machines=batch.encoder.max_machines,
    )
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("action_filter", ["legal", "giffler-thompson", "non-delay"])
@pytest.mark.parametrize("skip_forced", [False, True])
def test_every_slot_follows_the_single_env(action_filter, skip_forced):
    batch = JobShopBatch(MIXED, n_envs=4, action_filter=action_filter, skip_forced=skip_forced, seed=3)
    observation = batch.reset()
    envs = [_single_env(batch, b, action_filter) for b in range(batch.n_envs)]
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(300):
        for b, env in enumerate(envs):
            expected = env.encoder.encode(env.sim, env._candidates)
            for key, value in expected.items():
                np.testing.assert_array_equal(observation[key][b], value, err_msg=f"slot {b}, {key}")
            np.testing.assert_array_equal(batch.action_masks()[b], env.action_masks())
        masks = batch.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(mask)) for mask in masks])
        single = [env.step(int(a)) for env, a in zip(envs, actions)]
        observation, reward, done, infos = batch.step(actions)
        for b, (_, env_reward, terminated, _, env_info) in enumerate(single):
            assert reward[b] == pytest.approx(env_reward, rel=1e-6, abs=1e-6)
            assert done[b] == terminated
            if terminated:
                finished += 1
                instance = next(i for i in MIXED if i.name == infos[b]["instance"])
                assert validate(instance, infos[b]["solution"]) == []
                assert infos[b]["makespan"] == env_info["makespan"] == infos[b]["solution"].makespan(instance)
                np.testing.assert_array_equal(infos[b]["solution"].start_times, env_info["solution"].start_times)
                envs[b] = _single_env(batch, b, action_filter)
    assert finished >= 4


def test_auto_reset_reports_the_episode_and_its_terminal_observation():
    batch = JobShopBatch(TaillardGenerator([(6, 4)]), n_envs=3, seed=1)
    batch.reset()
    returns: list[float] = []
    for _ in range(200):
        masks = batch.action_masks()
        _, reward, done, infos = batch.step(masks.argmax(axis=1), terminal_observations=True)
        for b in np.flatnonzero(done):
            info = infos[b]
            assert info["episode"]["l"] >= 1
            # the return is minus the makespan over the trivial lower bound, less what reset and the forced steps
            # that open the episode dispatched before the first decision
            assert info["episode"]["r"] < 0
            assert info["terminal_observation"]["action_mask"].sum() == 0  # nothing left to dispatch
            assert batch.observation["action_mask"][b].sum() > 0  # already the next episode
            returns.append(info["episode"]["r"])
    assert len(returns) >= 3


def test_same_seed_same_trajectory():
    def run(seed):
        batch = JobShopBatch(TaillardGenerator([(8, 5), (5, 5)]), n_envs=5, interruption_rate=0.01, seed=seed)
        batch.reset()
        makespans = []
        rng = np.random.default_rng(7)
        for _ in range(150):
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in batch.action_masks()])
            _, _, done, infos = batch.step(actions)
            makespans += [(int(b), infos[b]["makespan"]) for b in np.flatnonzero(done)]
        return makespans, batch.observation["op_features"].copy()

    first, second, other = run(11), run(11), run(12)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0] != other[0]


def test_interruptions_grow_the_machine_arrays_and_stay_valid():
    instance = load_benchmark("ft06")
    batch = JobShopBatch([instance], n_envs=6, interruption_rate=0.05, mean_repair_time=5.0, seed=0)
    batch.reset()
    assert batch.machine_starts.shape[2] > instance.n_jobs  # downtime blocks need more slots than operations
    valid = 0
    for _ in range(200):
        _, _, done, infos = batch.step(batch.action_masks().argmax(axis=1))
        for b in np.flatnonzero(done):
            solution = infos[b]["solution"]
            assert solution.machine_downtime
            assert validate(instance, solution) == []
            valid += 1
    assert valid >= 6


def test_bad_actions_raise_and_leave_the_state_alone():
    batch = JobShopBatch([load_benchmark("ft06")], n_envs=2, seed=0)
    batch.reset()
    before = {key: value.copy() for key, value in batch.observation.items()}
    with pytest.raises(ValueError, match="one job per slot"):
        batch.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="invalid action 9 in slot 1"):
        batch.step(np.array([0, 9]))
    for key, value in batch.observation.items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(ValueError, match="n_envs"):
        JobShopBatch("ft06", n_envs=0)
    with pytest.raises(ValueError, match="action_filter"):
        JobShopBatch("ft06", n_envs=1, action_filter="fastest")
