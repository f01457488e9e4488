import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import schedgym.envs  # noqa: F401  (registers the env ids)
from schedgym.baselines.jobshop import CpSatJobShop
from schedgym.envs.jobshop import (
    ACTION_FILTERS,
    JobShopEnv,
    JobShopSimulator,
    TaillardGenerator,
    generate_taillard,
    load_benchmark,
    validate,
)


def _play(env, rng, seed=0):
    obs, info = env.reset(seed=seed)
    total, steps, actions = 0.0, 0, []
    while True:
        action = int(rng.choice(np.flatnonzero(env.action_masks())))
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        total += reward
        steps += 1
        if terminated:
            return total, steps, info, actions


@pytest.mark.parametrize("action_filter", ACTION_FILTERS)
def test_check_env_on_a_benchmark(action_filter):
    env = gym.make("schedgym/JobShop-v0", instances="ft06", action_filter=action_filter, render_mode="rgb_array")
    check_env(env.unwrapped)


def test_check_env_with_generator_and_interruptions():
    check_env(JobShopEnv(TaillardGenerator([(5, 4)]), interruption_rate=0.01, mean_repair_time=10))


@pytest.mark.parametrize("action_filter", ACTION_FILTERS)
def test_return_is_minus_makespan_and_solution_is_valid(action_filter):
    inst = load_benchmark("la01")
    env = JobShopEnv(inst, action_filter=action_filter)
    total, steps, info, _ = _play(env, np.random.default_rng(3))
    assert steps == inst.n_operations
    solution = info["solution"]
    assert validate(inst, solution) == []
    assert total == -solution.makespan(inst) == -info["makespan"]


def test_invalid_action_names_action_and_legal_ones():
    env = JobShopEnv("ft06")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"invalid action 17.*legal jobs.*\[0, 1, 2, 3, 4, 5\]"):
        env.step(17)
    for _ in range(6):  # finish job 0
        env.step(0) if env.sim.legal_jobs()[0] else None
    with pytest.raises(ValueError, match=r"invalid action 0"):
        env.step(0)


def test_same_seed_same_trajectory():
    def trajectory(seed):
        env = JobShopEnv(TaillardGenerator([(6, 6), (8, 4)]), interruption_rate=0.005)
        total, _, info, actions = _play(env, np.random.default_rng(seed), seed=seed)
        return total, actions, info["solution"].start_times.tolist(), info["solution"].machine_downtime

    assert trajectory(5) == trajectory(5)
    assert trajectory(5) != trajectory(6)


@settings(max_examples=40, deadline=None)
@given(
    jobs=st.integers(1, 7),
    machines=st.integers(1, 6),
    seed=st.integers(0, 10**6),
    action_filter=st.sampled_from(ACTION_FILTERS),
    interruptions=st.booleans(),
)
def test_random_legal_play_always_gives_a_valid_schedule(jobs, machines, seed, action_filter, interruptions):
    inst = generate_taillard(jobs, machines, seed)
    env = JobShopEnv(inst, action_filter=action_filter, interruption_rate=0.02 if interruptions else 0.0, mean_repair_time=15)
    total, _, info, _ = _play(env, np.random.default_rng(seed), seed=seed)
    assert validate(inst, info["solution"]) == []
    assert -total == info["solution"].makespan(inst)


def test_interruptions_delay_operations_but_stay_valid():
    inst = load_benchmark("ta01")
    env = JobShopEnv(inst, interruption_rate=0.002, mean_repair_time=40)
    _, _, info, _ = _play(env, np.random.default_rng(0), seed=0)
    solution = info["solution"]
    assert solution.machine_downtime, "some machine should have gone down"
    assert validate(inst, solution) == []


def test_builder_reaches_the_optimum():
    """Dispatching jobs in the order of an optimal schedule's start times rebuilds an optimal schedule."""
    inst = load_benchmark("ft06")
    optimal = CpSatJobShop().solve(inst, time_limit=20)
    assert optimal.makespan(inst) == 55
    sim = JobShopSimulator(inst)
    for flat in np.argsort(optimal.start_times, axis=None, kind="stable"):
        sim.dispatch(int(flat // inst.n_ops))
    assert sim.makespan == 55 and validate(inst, sim.solution()) == []


def test_insertion_fills_an_idle_gap():
    # job 0: M0 (2) then M1 (5); job 1: M1 (2). Dispatch job 0 twice, then job 1: it fits before job 0 on M1.
    from schedgym.envs.jobshop import JobShopInstance

    inst = JobShopInstance("gap", np.array([[0, 1], [1, 0]]), np.array([[2, 5], [2, 9]]))
    sim = JobShopSimulator(inst)
    sim.dispatch(0)
    sim.dispatch(0)
    start, end = sim.dispatch(1)
    assert (start, end) == (0, 2)
    sim.dispatch(1)
    assert sim.done and validate(inst, sim.solution()) == []


def test_skip_forced_only_removes_single_choice_steps():
    inst = load_benchmark("la01")
    env = JobShopEnv(inst, action_filter="non-delay", skip_forced=True)
    obs, _ = env.reset(seed=0)
    steps = 0
    while True:
        assert env.action_masks().sum() >= 1
        obs, _, terminated, _, info = env.step(int(np.flatnonzero(env.action_masks())[0]))
        steps += 1
        if terminated:
            break
        assert env.action_masks().sum() > 1 or env.sim.instance.n_operations - env.sim.n_scheduled == 1
    assert steps < inst.n_operations and validate(inst, info["solution"]) == []


def test_render_is_an_rgb_gantt():
    env = JobShopEnv("ft06", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8 and frame.std() > 0


def test_observation_does_not_fit_padding():
    with pytest.raises(ValueError, match="does not fit"):
        JobShopEnv("ta01", max_jobs=5).reset(seed=0)
