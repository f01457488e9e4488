import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from schedgym.baselines.jobshop import DispatchingRule
from schedgym.envs.jobshop import JobShopInstance, JobShopSolution, TaillardGenerator, generate_taillard, load_benchmark, validate
from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule
from schedgym.envs.jobshop.improve import JobShopImproveBatch, JobShopImproveEnv
from test_tabu import heads_and_tails  # the reference relaxation of the graph, independent of the kernels


@pytest.mark.parametrize("instance", [generate_taillard(6, 6, 1), load_benchmark("orb07"), load_benchmark("la21")], ids=lambda i: i.name)
def test_incremental_swaps_keep_heads_tails_and_order_exact(instance):
    schedule = DisjunctiveSchedule.from_start_times(instance, DispatchingRule("spt").solve(instance).start_times)
    rng = np.random.default_rng(0)
    for step in range(300):
        moves = np.flatnonzero(schedule.moves())
        if not len(moves):
            break
        u = int(rng.choice(moves))
        assert schedule.critical()[[u, schedule.machine_succ[u]]].all()  # a move swaps two critical neighbours
        makespan = schedule.swap(u)
        if step % 30 == 0:
            head, tail = heads_and_tails(instance, schedule.sequences())
            assert schedule.head.tolist() == head.tolist() and schedule.tail.tolist() == tail.tolist()
            assert makespan == int((head + instance.durations.ravel()).max())
        assert (schedule.rank[schedule.order] == np.arange(instance.n_operations)).all()
        assert all(schedule.rank[a] < schedule.rank[b] for a, b in zip(schedule.order[:-1], schedule.order[1:]))
        twin_head = schedule.head.copy()
        assert schedule.reevaluate() == makespan and (schedule.head == twin_head).all()
    assert validate(instance, JobShopSolution(instance.name, schedule.start_times())) == []


def test_a_swap_that_closes_a_cycle_is_refused_and_changes_nothing():
    # ops 0, 1 = job 0 on m0, m1; ops 2, 3 = job 1 on m1, m0. m0 runs 3 then 0, m1 runs 2 then 1: the path
    # 2 -> 3 -> 0 -> 1 runs beside the arc 2 -> 1, so swapping 2 and 1 would close a cycle
    instance = JobShopInstance("tiny", machines=np.array([[0, 1], [1, 0]]), durations=np.array([[2, 2], [3, 1]]))
    schedule = DisjunctiveSchedule(instance, [[3, 0], [2, 1]])
    before = (schedule.machine_succ.copy(), schedule.head.copy(), schedule.order.copy())
    with pytest.raises(ValueError, match="close a cycle"):
        schedule.swap(2)
    assert (schedule.machine_succ == before[0]).all() and (schedule.head == before[1]).all() and (schedule.order == before[2]).all()
    with pytest.raises(ValueError, match="no machine successor"):
        schedule.swap(1)


def test_env_passes_check_env_and_its_return_is_the_improvement():
    for name in ("ft06", "la03", "ft10"):
        check_env(JobShopImproveEnv(name, horizon=50))
    env = JobShopImproveEnv("ta01", horizon=200)
    observation, info = env.reset(seed=3)
    start = info["makespan"]
    rng = np.random.default_rng(0)
    total, done = 0.0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        total += reward
        done = terminated or truncated
    solution = info["solution"]
    assert validate(env.schedule.instance, solution) == []
    assert solution.makespan(env.schedule.instance) == info["best_makespan"] == start - total < start
    with pytest.raises(ValueError, match="node of one of the instance's operations"):
        env.step(env.encoder.n_nodes)


def test_an_operation_last_on_its_machine_or_a_cycle_closing_swap_is_a_null_move():
    instance = JobShopInstance("tiny", machines=np.array([[0, 1], [1, 0]]), durations=np.array([[2, 2], [3, 1]]))
    env = JobShopImproveEnv(instance, horizon=5)
    env.reset(options={"start_times": np.array([[1, 6], [0, 0]])})  # m0 runs 3 then 0, m1 runs 2 then 1
    assert env.schedule.sequences() == [[3, 0], [2, 1]]
    for node in (env.encoder.node(2, 2), env.encoder.node(1, 2)):  # closes a cycle; last on m1
        _, reward, _, _, info = env.step(node)
        assert reward == 0 and env.schedule.sequences() == [[3, 0], [2, 1]] and env.moves_made in (1, 2)


def test_same_seed_same_trajectory_and_batch_slots_match_the_env():
    generator = TaillardGenerator([(6, 6), (8, 6)])
    batch = JobShopImproveBatch(generator, 3, seed=7, horizon=5, start=("spt", "random"))
    observation = batch.reset()
    envs = [JobShopImproveEnv(generator, horizon=5, start=("spt", "random")) for _ in range(3)]
    singles = [env.reset(seed=7 + b)[0] for b, env in enumerate(envs)]
    for b in range(3):
        assert all(np.array_equal(observation[key][b], singles[b][key]) for key in singles[b])
    episodes = 0
    for _ in range(12):
        actions = np.array([int(np.flatnonzero(mask)[0]) for mask in batch.action_masks()])
        observation, rewards, dones, infos = batch.step(actions)
        for b, env in enumerate(envs):
            single, reward, terminated, truncated, _ = env.step(int(actions[b]))
            if terminated or truncated:
                single = env.reset()[0]
                episodes += 1
                assert dones[b] and "episode" in infos[b]
            assert reward == pytest.approx(rewards[b]) and np.array_equal(single["op_features"], observation["op_features"][b])
    assert episodes >= 3


def test_an_optimal_start_ends_the_episode_at_once():
    one_machine = JobShopInstance("one-machine", machines=np.zeros((3, 1), dtype=np.int64), durations=np.array([[3], [1], [4]]))
    env = JobShopImproveEnv(one_machine, horizon=10)
    env.reset(seed=0)
    assert env.action_masks().sum() == 3  # nothing to move: any action is allowed and ends the episode
    _, reward, terminated, _, info = env.step(0)
    assert terminated and reward == 0 and info["solution"].makespan(one_machine) == 8


def test_learned_search_solvers_return_valid_schedules_no_worse_than_their_start():
    from schedgym.registry import make_solver

    instance = load_benchmark("la16")
    start = DispatchingRule("fdd-mwkr").solve(instance).makespan(instance)
    l2s = make_solver("jobshop", "l2s:300")
    first, second = l2s.solve(instance, seed=1), l2s.solve(instance, seed=1)
    assert l2s.moves_made == 300 and np.array_equal(first.start_times, second.start_times)
    for solution in (first, make_solver("jobshop", "ppo-tabu").solve(instance, time_limit=2.0, seed=0)):  # the limit includes loading the policy
        assert validate(instance, solution) == []
        assert solution.makespan(instance) < start
    for hint in ("ppo-tabu", "l2s"):
        hinted = make_solver("jobshop", "cpsat-ppo", hint=hint).solve(instance, time_limit=1.0, seed=0)
        assert validate(instance, hinted) == [] and hinted.lower_bound <= hinted.makespan(instance) <= start


def test_learned_search_refuses_bad_settings_with_the_fix():
    from schedgym.agents.checkpoint import CheckpointError
    from schedgym.agents.improve import ImprovementPolicySolver, PolicyCpSatSolver
    from schedgym.baselines.jobshop import tabu_search

    instance = load_benchmark("ft06")
    with pytest.raises(CheckpointError, match="jobshop-improve"):
        ImprovementPolicySolver(policy="jobshop-default")  # a dispatching policy, not an improvement one
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        PolicyCpSatSolver(search_fraction=1.0)
    with pytest.raises(ValueError, match="hint_search must be one of"):
        PolicyCpSatSolver(hint_search="tabu")
    with pytest.raises(ValueError, match="rescore_every must be at least 1"):
        tabu_search(instance, DispatchingRule("spt").solve(instance).start_times, max_iterations=5, keep_moves=0)
    with pytest.raises(ValueError, match="drop the machine downtime"):
        ImprovementPolicySolver().solve(instance, machine_downtime=[(0, 0, 5)])


@pytest.mark.parametrize("instance", [generate_taillard(8, 6, 2), load_benchmark("la16")], ids=lambda i: i.name)
def test_n7_moves_are_acyclic_exact_and_hold_the_n5_moves(instance):
    from schedgym.envs.jobshop.disjunctive import TO_BACK, TO_FRONT

    schedule = DisjunctiveSchedule.from_start_times(instance, DispatchingRule("spt").solve(instance).start_times)
    rng = np.random.default_rng(1)
    kinds_made = set()
    for _ in range(60):
        masks = schedule.n7_moves()
        for u in np.flatnonzero(schedule.moves()):  # N5: the block's second operation to its front, or its second-last to its back
            v = schedule.machine_succ[u]
            assert masks[TO_FRONT, v] or masks[TO_BACK, u]
        kind, v = (int(x) for x in rng.choice(np.argwhere(masks)))
        assert schedule.critical()[v]  # moves are made inside critical blocks
        makespan = schedule.n7_move(v, kind)
        kinds_made.add(kind)
        head, _ = heads_and_tails(instance, schedule.sequences())  # the independent relaxation of the new graph
        assert schedule.head.tolist() == head.tolist() and makespan == int((head + instance.durations.ravel()).max())
        assert validate(instance, JobShopSolution(instance.name, schedule.start_times())) == []
    assert kinds_made == {0, 1, 2, 3}
    first = int(np.flatnonzero(schedule.critical() & (schedule.machine_pred < 0))[0])
    with pytest.raises(ValueError, match="does not exist"):
        schedule.n7_move(first, TO_FRONT)


def test_n7_env_passes_check_env_and_moves_only_within_its_mask():
    check_env(JobShopImproveEnv("ft06", horizon=30, neighbourhood="n7"))
    env = JobShopImproveEnv("la16", horizon=60, neighbourhood="n7", start="spt")
    _, info = env.reset(seed=0)
    start_makespan, n_nodes = info["makespan"], env.encoder.n_nodes
    assert env.action_space.n == 4 * n_nodes
    rng = np.random.default_rng(0)
    for _ in range(60):
        outside = int(np.flatnonzero(~env.action_masks())[0])  # la16 fills every node: no padding
        before = env.schedule.start_times()
        _, _, terminated, truncated, info = env.step(outside)  # outside the mask: a null move
        assert (env.schedule.start_times() == before).all()
        if terminated or truncated:
            break
        _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        assert validate(env.schedule.instance, JobShopSolution("la16", env.schedule.start_times())) == []
        if terminated or truncated:
            break
    assert info["best_makespan"] <= start_makespan
    with pytest.raises(ValueError, match="N7 move of kind"):
        env.step(4 * n_nodes)
    with pytest.raises(ValueError, match="neighbourhood must be"):
        JobShopImproveEnv("ft06", neighbourhood="n6")
