import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import schedgym
from schedgym.baselines.jobshop import RULE_SCORES
from schedgym.baselines.jobshop.blocking import BlockingRule, CpSatBlockingJobShop
from schedgym.envs.jobshop import JobShopInstance, TaillardGenerator, generate_taillard, load_benchmark
from schedgym.envs.jobshop.blocking import BlockingJobShopInstance, BlockingJobShopSimulator, suite_instance
from schedgym.envs.jobshop.blocking_env import BlockingJobShopBatch, BlockingJobShopEnv
from schedgym.envs.jobshop.blocking_solution import BlockingJobShopSolution, completion_times, validate_blocking
from schedgym.envs.jobshop.suites import BLOCKING_SUITES, resolve_blocking_suite
from schedgym.registry import make_solver

# job 0: m0 for 1, then m1 for 1; job 1: m1 for 10, then m0 for 1
CROSSING = JobShopInstance("crossing", machines=np.array([[0, 1], [1, 0]]), durations=np.array([[1, 1], [10, 1]]))


def run_random(instance: BlockingJobShopInstance, seed: int) -> tuple[BlockingJobShopSimulator, int]:
    """Random legal moves to the end; returns the simulator and how many moves were swaps."""
    rng = np.random.default_rng(seed)
    sim = BlockingJobShopSimulator(instance)
    candidates, swaps = sim.settle(), 0
    while not sim.done:
        swaps += sim.move(int(rng.choice(np.flatnonzero(candidates)))) > 1
        candidates = sim.settle()
    return sim, swaps


def test_a_job_blocks_its_machine_until_a_swap_moves_both():
    sim = BlockingJobShopSimulator(BlockingJobShopInstance(CROSSING))
    assert sim.settle().tolist() == [True, True]
    sim.move(0)
    assert sim.settle().tolist() == [False, True]  # moves are taken one at a time, at the same instant
    sim.move(1)
    # job 0 finishes on m0 at 1 but m1 is held until 10: it stays on m0, which job 1 then wants: a cycle
    assert sim.settle().tolist() == [True, False] and sim.now == 10  # one move per cycle, by its lowest job
    assert sim.held.tolist() == [0, 1]
    assert sim.move(0) == 2
    sim.settle()
    assert sim.done and sim.start_times.tolist() == [[0, 10], [0, 10]] and sim.makespan == 11
    assert validate_blocking(BlockingJobShopInstance(CROSSING), sim.solution()) == []


def test_a_shutdown_pauses_the_running_operation_and_keeps_new_ones_out():
    instance = BlockingJobShopInstance(CROSSING, shutdowns=((1, 2, 5), (0, 0, 3)))
    sim = BlockingJobShopSimulator(instance)
    assert sim.settle().tolist() == [False, True]  # m0 is down until 3
    sim.move(1)
    assert sim.end_times[1, 0] == 13  # 10 units of work on m1, paused during [2, 5)
    sim.settle()
    assert sim.now == 3 and sim.candidates.tolist() == [True, False]
    sim.move(0)
    sim.settle()
    while not sim.done:
        sim.move(int(np.flatnonzero(sim.candidates)[0]))
        sim.settle()
    solution = sim.solution()
    assert validate_blocking(instance, solution) == []
    assert completion_times(CROSSING, solution).tolist() == sim.end_times.tolist()
    assert solution.makespan(instance) == sim.makespan == 14


@pytest.mark.parametrize("rate", [0.0, 0.1])
def test_random_runs_are_valid_swap_and_agree_with_the_validators_times(rate):
    swaps = 0
    for seed in range(6):
        instance = suite_instance(generate_taillard(6, 4, seed, name=f"g{seed}"), rate)
        assert (len(instance.shutdowns) > 0) == (rate > 0)
        sim, n_swaps = run_random(instance, seed)
        swaps += n_swaps
        solution = sim.solution()
        assert validate_blocking(instance, solution) == []
        assert (completion_times(instance.jobshop, solution) == sim.end_times).all()
        assert solution.makespan(instance) == sim.makespan
    assert swaps > 0


def test_the_validator_names_each_broken_rule():
    instance = BlockingJobShopInstance(CROSSING, shutdowns=((0, 20, 30),))
    good = BlockingJobShopSolution("crossing", [[0, 10], [0, 10]], [(0, 20, 30)])
    assert validate_blocking(instance, good) == []
    overlap = BlockingJobShopSolution("crossing", [[0, 10], [0, 5]], [(0, 20, 30)])  # job 1 enters m0 while job 0 holds it
    assert any("holds it" in v for v in validate_blocking(instance, overlap))
    early = BlockingJobShopSolution("crossing", [[0, 10], [0, 9]], [(0, 20, 30)])
    assert any("before op 0 completes" in v for v in validate_blocking(instance, early))
    during = BlockingJobShopSolution("crossing", [[25, 40], [0, 10]], [(0, 20, 30)])
    assert any("is down" in v for v in validate_blocking(instance, during))
    assert any("shutdowns are not" in v for v in validate_blocking(instance, BlockingJobShopSolution("crossing", [[0, 10], [0, 10]], [])))
    assert "shape" in validate_blocking(instance, BlockingJobShopSolution("crossing", [[0, 10]], [(0, 20, 30)]))[0]
    # without swaps' half-open hand-over the schedule would conflict; with it, it does not
    assert validate_blocking(BlockingJobShopInstance(CROSSING), BlockingJobShopSolution("crossing", [[0, 10], [0, 10]])) == []


def test_an_illegal_move_raises_and_changes_nothing():
    sim = BlockingJobShopSimulator(BlockingJobShopInstance(CROSSING, shutdowns=((0, 0, 3),)))
    sim.settle()
    before = sim.start_times.copy()
    with pytest.raises(ValueError, match="can move now are \\[1\\]"):
        sim.move(0)
    assert (sim.start_times == before).all()


def test_bad_shutdowns_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        BlockingJobShopInstance(CROSSING, shutdowns=((0, 0, 5), (0, 3, 8)))
    with pytest.raises(ValueError, match="machine"):
        BlockingJobShopInstance(CROSSING, shutdowns=((7, 0, 5),))


@pytest.mark.parametrize("rule", sorted(RULE_SCORES))
def test_blocking_rules_build_valid_reproducible_schedules(rule):
    instance = suite_instance(load_benchmark("ta01"), 0.1)
    first = BlockingRule(rule).solve(instance, seed=3)
    assert validate_blocking(instance, first) == []
    assert (BlockingRule(rule).solve(instance, seed=3).start_times == first.start_times).all()


def test_holders_first_changes_the_schedule():
    instance = suite_instance(load_benchmark("ta01"), 0.05)
    aware, plain = BlockingRule("mwkr").solve(instance), BlockingRule("mwkr", release_first=False).solve(instance)
    assert validate_blocking(instance, plain) == [] and (aware.start_times != plain.start_times).any()


def test_cpsat_beats_its_hint_and_respects_the_shutdowns():
    shop = generate_taillard(5, 4, 2, name="small")
    plain = BlockingJobShopInstance(shop)
    solution = CpSatBlockingJobShop(num_workers=1).solve(plain, time_limit=5, seed=0)
    assert validate_blocking(plain, solution) == []
    hint = BlockingRule("mwkr").solve(plain)
    assert solution.lower_bound <= solution.makespan(plain) <= hint.makespan(plain)
    shut = suite_instance(shop, 0.1)
    assert len(shut.shutdowns) > 0
    with_shutdowns = CpSatBlockingJobShop(num_workers=1).solve(shut, time_limit=5, seed=0)
    assert validate_blocking(shut, with_shutdowns) == [] and with_shutdowns.lower_bound is None
    assert with_shutdowns.makespan(shut) >= solution.lower_bound


def test_blocking_suites_fix_their_shutdowns_by_name():
    assert "blocking-taillard-15x15-shutdown0.05" in BLOCKING_SUITES and "blocking-taillard-20x20" in BLOCKING_SUITES
    first, again = resolve_blocking_suite("blocking-taillard-15x15-shutdown0.05"), resolve_blocking_suite("blocking-taillard-15x15-shutdown0.05")
    assert [i.name for i in first][:2] == ["ta01-shutdown0.05", "ta02-shutdown0.05"]
    assert all(a.shutdowns == b.shutdowns and len(a.shutdowns) > 0 for a, b in zip(first, again))
    assert resolve_blocking_suite("blocking-ta01")[0].shutdowns == ()
    with pytest.raises(KeyError, match="not a number"):
        resolve_blocking_suite("blocking-ta01-shutdownfast")
    with pytest.raises(KeyError, match="blocking-<job-shop suite>"):
        resolve_blocking_suite("taillard-15x15")


@pytest.mark.parametrize("options", [{"shutdown_rate": 0.0}, {"shutdown_rate": (0.05, 0.1), "skip_forced": True}])
def test_env_passes_check_env_and_returns_minus_the_makespan(options):
    env = gym.make("schedgym/BlockingJobShop-v0", instances=TaillardGenerator([(5, 4), (6, 6)]), **options)
    check_env(env.unwrapped, skip_render_check=True)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        total = 0.0
        while True:
            assert obs["action_mask"].any()
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += reward
            if terminated:
                break
        instance = env.unwrapped.sim.instance
        assert validate_blocking(instance, info["solution"]) == []
        assert total == -info["makespan"] == -info["solution"].makespan(instance)


def test_env_is_reproducible_and_refuses_illegal_actions():
    def trajectory(seed):
        env = BlockingJobShopEnv(TaillardGenerator([(6, 6)]), shutdown_rate=0.1)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        actions = []
        while True:
            actions.append(int(env.action_space.sample()))
            obs, _, terminated, _, info = env.step(actions[-1])
            if terminated:
                return actions, info["makespan"]

    assert trajectory(4) == trajectory(4)
    env = BlockingJobShopEnv("ft06")
    obs, _ = env.reset(seed=0)
    illegal = int(np.flatnonzero(obs["action_mask"] == 0)[0]) if (obs["action_mask"] == 0).any() else env.encoder.max_jobs
    with pytest.raises(ValueError, match="invalid action"):
        env.step(illegal)


def test_the_observation_shows_no_shutdown_before_it_begins():
    shop = generate_taillard(6, 6, 5, name="late")
    late_start = 150
    with_late = BlockingJobShopInstance(shop, shutdowns=tuple((m, late_start, late_start + 40) for m in range(6)))
    envs = [BlockingJobShopEnv(BlockingJobShopInstance(shop)), BlockingJobShopEnv(with_late)]
    observations = [env.reset(seed=0)[0] for env in envs]
    steps = 0
    while envs[0].sim.now < late_start and envs[1].sim.now < late_start:
        for key in observations[0]:
            assert (observations[0][key] == observations[1][key]).all(), key
        action = int(np.flatnonzero(observations[0]["action_mask"])[0])
        observations = [env.step(action)[0] for env in envs]
        steps += 1
    assert steps > 3


def test_batch_auto_resets_and_records_episodes():
    batch = BlockingJobShopBatch(TaillardGenerator([(4, 3)]), 3, seed=1, normalize_reward=True)
    batch.reset()
    episodes, rng = [], np.random.default_rng(0)
    for _ in range(60):
        actions = [int(rng.choice(np.flatnonzero(mask))) for mask in batch.action_masks()]
        _, rewards, dones, infos = batch.step(np.array(actions))
        episodes += [info["episode"] for info in infos if "episode" in info]
        assert batch.action_masks().any(axis=1).all()
    assert len(episodes) >= 3 and all(e["r"] <= -1.0 for e in episodes)  # a makespan is at least the trivial bound


def test_the_shipped_policy_dispatches_valid_reproducible_blocking_schedules():
    instance = resolve_blocking_suite("blocking-ta01-shutdown0.1")[0]
    solver = make_solver("jobshop-blocking", "ppo")
    first = solver.solve(instance)
    assert validate_blocking(instance, first) == []
    assert (make_solver("jobshop-blocking", "ppo:jobshop-blocking-default").solve(instance).start_times == first.start_times).all()


def test_the_gantt_chart_shows_blocked_time_and_shutdowns():
    from schedgym.envs.jobshop.render import blocking_gantt_figure

    instance = BlockingJobShopInstance(CROSSING, shutdowns=((1, 2, 5),), name="crossing-shut")
    solution = BlockingRule("mwkr").solve(instance)
    figure = blocking_gantt_figure(instance, solution)
    bars = [collection for collection in figure.axes[0].collections]
    # per machine a blocked and a processing collection, then one per shutdown
    assert len(bars) == 2 * CROSSING.n_machines + 1
    assert figure.axes[0].get_title() == f"crossing-shut: makespan {solution.makespan(instance)}"


def test_import_schedgym_registers_the_blocking_env():
    assert "schedgym/BlockingJobShop-v0" in gym.registry and schedgym.__name__ == "schedgym"
