import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from schedgym.agents.gnn import GnnConfig
from schedgym.agents.gnn_socdag import SocDagGnn
from schedgym.agents.rollout import run_policy, stack_observations
from schedgym.baselines.socdag import ONLINE_RULES, CpSatSocDag, OnlineRule, StaticListScheduler
from schedgym.envs import InstanceFormatError
from schedgym.envs.socdag import (
    APPLICATIONS,
    SUITES,
    SocDagEnv,
    SocDagInstance,
    SocDagSimulator,
    SocDagSolution,
    TaskGraph,
    execute_plan,
    load_instance,
    load_stg,
    metrics,
    parse_stg,
    stream_instance,
    topcuoglu2002,
    validate,
)


def test_topcuoglu_example_heft_80_ranks_and_cpsat_proves_73():
    inst = topcuoglu2002()
    published_ranks = [108.0, 77.0, 80.0, 80.0, 69.0, 63.3, 42.7, 35.7, 44.3, 14.7]
    assert np.allclose(inst.upward_rank(), published_ranks, atol=0.05)
    heft = StaticListScheduler("heft").solve(inst)
    assert validate(inst, heft) == []
    assert metrics(inst, heft)["makespan"] == pytest.approx(80.0)
    exact = CpSatSocDag().solve(inst, time_limit=20)
    assert validate(inst, exact) == []
    assert metrics(inst, exact)["makespan"] == pytest.approx(73.0)
    assert exact.lower_bound_us == pytest.approx(73.0)


@pytest.mark.parametrize("name", SUITES["socdag-static"])
def test_cpsat_reaches_the_shipped_optimum_and_no_rule_beats_it(name):
    inst = load_instance(name)
    exact = CpSatSocDag().solve(inst, time_limit=20)
    assert validate(inst, exact) == []
    assert metrics(inst, exact)["makespan"] == pytest.approx(inst.optimum_us, abs=1e-6)
    for solver in [StaticListScheduler("heft"), StaticListScheduler("cpop"), *(OnlineRule(r) for r in ONLINE_RULES)]:
        solution = solver.solve(inst, seed=0)
        assert validate(inst, solution) == [], solver.name
        assert metrics(inst, solution)["makespan"] >= inst.optimum_us - 1e-6


def test_every_solver_is_valid_on_a_noisy_stream_and_reproducible():
    inst = stream_instance(55.0, 40, 0.3, seed=3)
    assert not np.allclose(inst.noise_factor, 1.0)
    for solver in [StaticListScheduler("heft"), StaticListScheduler("cpop"), *(OnlineRule(r) for r in ONLINE_RULES)]:
        first, second = solver.solve(inst, seed=5), solver.solve(inst, seed=5)
        assert validate(inst, first) == [], solver.name
        assert np.array_equal(first.start_us, second.start_us) and np.array_equal(first.pe, second.pe)
        # the actual (noisy) run times are what ran
        assert np.allclose(first.end_us - first.start_us, inst.actual_us[np.arange(inst.n_tasks), first.pe])


def test_cpsat_refuses_a_stream():
    with pytest.raises(ValueError, match="static DAG"):
        CpSatSocDag().solve(stream_instance(30.0, 5, 0.0, seed=0))


def _two_task_instance():
    graph = TaskGraph("pair", np.array([0, 1]), np.array([[0, 1]]), np.array([100.0]))
    inst = load_instance("topcuoglu2002")
    return SocDagInstance("pair", inst.soc, ("a", "b"), np.array([[5.0, np.nan, 7.0], [3.0, 4.0, 2.0]]), (graph,), np.array([0]), np.array([0.0]))


def test_validator_names_each_violation():
    inst = _two_task_instance()
    good = SocDagSolution(np.array([0, 1]), np.array([0.0, 105.0]), np.array([5.0, 109.0]))
    assert validate(inst, good) == []
    cases = {
        "cannot run": SocDagSolution(np.array([1, 1]), np.array([0.0, 120.0]), np.array([5.0, 124.0])),
        "transfer": SocDagSolution(np.array([0, 1]), np.array([0.0, 50.0]), np.array([5.0, 54.0])),
        "run time there": SocDagSolution(np.array([0, 0]), np.array([0.0, 5.0]), np.array([5.0, 9.0])),
        "while task": SocDagSolution(np.array([0, 0]), np.array([0.0, 4.0]), np.array([5.0, 7.0])),
        "before its job arrives": SocDagSolution(np.array([0, 0]), np.array([-1.0, 5.0]), np.array([4.0, 8.0])),
        "does not exist": SocDagSolution(np.array([0, 9]), np.array([0.0, 5.0]), np.array([5.0, 8.0])),
        "expected pe": SocDagSolution(np.array([0]), np.array([0.0]), np.array([5.0])),
    }
    for words, solution in cases.items():
        violations = validate(inst, solution)
        assert violations and any(words in v for v in violations), (words, violations)
    # same PE: no transfer needed
    assert validate(inst, SocDagSolution(np.array([0, 0]), np.array([0.0, 5.0]), np.array([5.0, 8.0]))) == []


def test_execute_plan_follows_the_plan_order_and_data_delays():
    inst = _two_task_instance()
    solution = execute_plan(inst, np.array([2, 0]), np.array([0.0, 1.0]))
    assert solution.start_us.tolist() == [0.0, 107.0] and solution.end_us.tolist() == [7.0, 110.0]
    assert validate(inst, solution) == []


def test_instance_rejects_cycles_and_unsupported_tasks():
    with pytest.raises(ValueError, match="cycle"):
        TaskGraph("loop", np.array([0, 1]), np.array([[0, 1], [1, 0]]), np.array([1.0, 1.0]))
    inst = _two_task_instance()
    with pytest.raises(ValueError, match="no PE type can run"):
        dataclasses.replace(inst, latency_us=np.array([[np.nan, np.nan, np.nan], [1.0, 1.0, 1.0]]))


def test_simulator_refuses_illegal_commitments():
    sim = SocDagSimulator(_two_task_instance(), queue_capacity=1)
    with pytest.raises(ValueError, match="not ready"):
        sim.commit(1, 0)
    with pytest.raises(ValueError, match="cannot run"):
        sim.commit(0, 1)
    sim.commit(0, 0)
    assert sim.ready == [1] and sim.now_us == pytest.approx(5.0)
    sim.commit(1, 2)
    assert sim.done and sim.job_time_us == pytest.approx(5.0 + 100.0 + 2.0)


STG = """3
0 0 0
1 4 1 0
2 6 1 0
3 5 2 1 2
4 0 1 3
# comment lines follow the graph
"""


def test_stg_loader_and_its_errors(tmp_path):
    graph, times = parse_stg(STG)
    assert graph.n_tasks == 5 and times.tolist() == [0, 4, 6, 5, 0]
    path = tmp_path / "tiny.stg"
    path.write_text(STG)
    inst = load_stg(path)
    assert inst.n_tasks == 5 and not np.isfinite(inst.expected_us[1, inst.soc.pe_types == 2]).any()
    best = StaticListScheduler("heft").solve(inst)
    assert validate(inst, best) == [] and metrics(inst, best)["makespan"] == pytest.approx(11.0)
    bad = STG.replace("3 5 2 1 2", "3 5 2 1 x")
    with pytest.raises(InstanceFormatError, match="line 5"):
        parse_stg(bad)
    with pytest.raises(InstanceFormatError, match="predecessors"):
        parse_stg(STG.replace("3 5 2 1 2", "3 5 3 1 2"))
    with pytest.raises(InstanceFormatError, match="cannot read"):
        load_stg(tmp_path / "missing.stg")


@pytest.mark.parametrize("binding", ["early", "late"])
@pytest.mark.parametrize("mode", ["pair", "order"])
def test_env_passes_check_env_and_its_return_is_the_objective(mode, binding):
    env = SocDagEnv(stream_instance(45.0, 15, 0.2, seed=1), mode=mode, binding=binding)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, reward, done, _, info = env.step(env.action_space.sample())
        total += reward
    inst = env.sim.instance
    assert validate(inst, info["solution"]) == []
    assert -total * env.time_scale_us == pytest.approx(metrics(inst, info["solution"])["mean_job_duration"])


def test_env_rejects_an_illegal_action_and_is_seeded():
    env = gym.make("schedgym/SocDag-v0", instances="socdag-stream-low")
    env.reset(seed=4)
    illegal = int(np.flatnonzero(~env.unwrapped.action_masks())[0])
    with pytest.raises(ValueError, match="invalid action"):
        env.step(illegal)

    def trajectory(seed):
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return [env.step(env.action_space.sample())[1] for _ in range(30)]

    assert trajectory(7) == trajectory(7)


def test_wait_is_allowed_only_in_late_binding_and_only_while_an_event_is_to_come():
    early = SocDagEnv(stream_instance(60.0, 10, 0.2, seed=0))
    early.reset(seed=0)
    assert not early.action_masks()[early.wait_action]
    with pytest.raises(ValueError, match="waiting"):
        early.step(early.wait_action)

    late = SocDagEnv(stream_instance(60.0, 10, 0.2, seed=0), binding="late")
    obs, _ = late.reset(seed=0)
    assert late.sim.queue_capacity == 1 and late.action_masks()[late.wait_action]
    before = late.sim.now_us
    late.step(late.wait_action)
    assert late.sim.now_us > before and late.sim.n_done + len(late.sim.ready) > 0
    # a committed task holds its PE alone: a busy PE is never offered
    done = False
    while not done:
        busy = late.sim.queue_length > 0
        pairs = late.action_masks()[:-1].reshape(late.encoder.max_tasks, late.encoder.max_pes)[:, : late.sim.instance.n_pes]
        assert not pairs[:, busy].any()
        legal = np.flatnonzero(late.action_masks()[:-1])
        _, _, done, _, info = late.step(int(legal[0]) if len(legal) else late.wait_action)
    assert validate(late.sim.instance, info["solution"]) == []
    with pytest.raises(ValueError, match="nothing to wait for"):
        late.sim.wait()


def test_srpt_favours_small_jobs_and_beats_online_heft_at_high_load():
    inst = stream_instance(80.0, 60, 0.2, seed=4)
    srpt, heft = OnlineRule("srpt").solve(inst), OnlineRule("heft-online").solve(inst)
    assert validate(inst, srpt) == []
    assert metrics(inst, srpt)["mean_job_duration"] < 0.9 * metrics(inst, heft)["mean_job_duration"]
    # shortest remaining work first: the jobs with the least work gain far more than those with the most
    work = np.bincount(inst.task_job, weights=np.where(inst.supported(), inst.expected_us, np.inf).min(axis=1))

    def durations(solution: SocDagSolution) -> np.ndarray:
        end = np.zeros(inst.n_jobs)
        np.maximum.at(end, inst.task_job, solution.end_us)
        return end - inst.arrival_us

    small, big = work <= np.quantile(work, 1 / 3), work >= np.quantile(work, 2 / 3)
    gain_small = durations(srpt)[small].mean() / durations(heft)[small].mean()
    gain_big = durations(srpt)[big].mean() / durations(heft)[big].mean()
    assert gain_small < 0.5 * gain_big
    with pytest.raises(ValueError, match="binding"):
        from schedgym.agents.imitation import collect_rule_demonstrations
        from schedgym.envs.socdag import StreamGenerator

        collect_rule_demonstrations(StreamGenerator((60.0, 60.0), (0.2, 0.2), 4), 1, seed=0, rule="srpt", binding="early")


def test_srpt_reservations_keep_tasks_from_piling_up_on_one_accelerator():
    # a 40 jobs/ms stream heavy in pulse-Doppler jobs, whose FFT tasks all prefer the same accelerators: without
    # reservations every one of them waits for those accelerators while other PEs idle (1.38x online HEFT)
    inst = load_instance("stream-rate40-noise0-s17")
    srpt, heft = OnlineRule("srpt").solve(inst), OnlineRule("heft-online").solve(inst)
    assert validate(inst, srpt) == []
    assert metrics(inst, srpt)["mean_job_duration"] < 1.1 * metrics(inst, heft)["mean_job_duration"]


def test_dagger_labels_the_states_the_student_reaches_with_the_rule_choice():
    from schedgym.agents.imitation import collect_rule_demonstrations, greedy_actor
    from schedgym.envs.socdag import StreamGenerator

    torch.manual_seed(0)
    student = SocDagGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16), "pair", "late")
    streams = StreamGenerator((60.0, 60.0), (0.2, 0.2), 6)
    demos = collect_rule_demonstrations(streams, 1, seed=5, rule="srpt", binding="late", student=student)
    env = SocDagEnv(streams, mode="pair", binding="late")
    obs, _ = env.reset(seed=5)
    act, choose = greedy_actor(student), ONLINE_RULES["srpt"][0]
    rank = env.sim.instance.upward_rank()
    disagreements = 0
    for k, label in enumerate(demos.actions.tolist()):
        assert all(np.array_equal(obs[key], demos.observations[key][k]) for key in obs)  # the student drove here
        move = choose(env.sim, rank, np.random.default_rng(0))
        assert label == (env.wait_action if move is None else env.window_slot(move[0]) * env.encoder.max_pes + move[1])
        action = act([obs])[0]
        disagreements += action != label
        obs, _, done, _, _ = env.step(action)
    assert done and disagreements > 0


def test_render_returns_a_gantt_image():
    env = SocDagEnv("sc_rx", render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 0


def test_gnn_scores_pairs_or_orders_and_batches_any_window():
    torch.manual_seed(0)
    instances = [load_instance("wifi_rx"), stream_instance(55.0, 10, 0.0, seed=0)]
    for mode, width in (("pair", 16 * 13 + 1), ("order", 16 + 1)):
        net = SocDagGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16), mode).eval()
        observations = [SocDagEnv(inst, mode=mode, max_tasks=16).reset(seed=0)[0] for inst in instances]
        logits, value = net(stack_observations(observations))
        assert logits.shape == (2, width) and value.shape == (2,)
        alone, _ = net(stack_observations(observations[:1]))
        assert torch.allclose(alone[0], logits[0], atol=1e-5)
    with pytest.raises(ValueError, match="pair_features"):
        bad = stack_observations(observations)
        bad["pair_features"] = bad["pair_features"][..., :2]
        net(bad)


@pytest.mark.parametrize("binding", ["early", "late"])
def test_untrained_policy_rollouts_are_valid(binding):
    net = SocDagGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16), "order", binding).eval()
    instances = [load_instance(name) for name in list(APPLICATIONS)[:3]] + [stream_instance(70.0, 8, 0.2, seed=1)]
    for inst, solution in zip(instances, run_policy(net, instances, problem="socdag")):
        assert validate(inst, solution) == []


def test_bench_scores_socdag_against_the_shipped_optima():
    from schedgym.bench import BenchRun, run_bench

    rows = run_bench([BenchRun("socdag", "socdag-static", ["heft", "cpsat"], 20.0, ["topcuoglu2002", "wifi_rx"])], progress=False)["rows"]
    by = {(r["instance"], r["solver"]): r for r in rows}
    assert all(r["valid"] for r in rows)
    assert by["topcuoglu2002", "heft"]["gap_pct"] == pytest.approx(100 * (80 - 73) / 73)
    assert by["topcuoglu2002", "cpsat"]["gap_pct"] == pytest.approx(0.0)
    assert set(by["wifi_rx", "heft"]["metrics"]) >= {"makespan", "mean_job_duration", "p95_job_duration"}


@pytest.mark.parametrize("rule, binding", [("heft-online", "early"), ("srpt", "late")])
def test_rule_demonstrations_replay_to_the_rule_schedule(rule, binding):
    from schedgym.agents.imitation import collect_rule_demonstrations
    from schedgym.envs.socdag import StreamGenerator

    streams = StreamGenerator((60.0, 60.0), (0.2, 0.2), 8)
    demos = collect_rule_demonstrations(streams, 1, seed=3, rule=rule, binding=binding)
    env = SocDagEnv(streams, mode="pair", binding=binding)
    env.reset(seed=3)
    for action in demos.actions.tolist():
        _, _, done, _, info = env.step(action)
    assert done
    inst = env.sim.instance
    expected = OnlineRule(rule).solve(inst)
    assert np.array_equal(info["solution"].pe, expected.pe) and np.allclose(info["solution"].start_us, expected.start_us)
    assert demos.returns[0] == pytest.approx(-metrics(inst, expected)["mean_job_duration"] / env.time_scale_us, rel=1e-5)


def test_tiny_socdag_training_run_gives_a_loadable_policy(tmp_path):
    from schedgym.agents.checkpoint import CheckpointError, load_network, read_metadata
    from schedgym.agents.solvers import PpoSolver
    from schedgym.agents.train import TrainConfig, train

    config = dataclasses.replace(
        TrainConfig.for_problem("socdag"), total_steps=64, n_envs=2, n_steps=32, batch_size=32, n_epochs=1,
        stream_jobs=4, bc_instances=1, bc_epochs=1, dagger_rounds=1, dagger_epochs=1, eval_every_steps=64,
        val_instances_per_size=1, torch_threads=1,
    )
    out = train(config, tmp_path / "socdag.zip", log_dir=None, progress_bar=False)
    assert len(read_metadata(out).figures["bc_accuracy"]) == 2  # cloning, then one DAgger round
    net, metadata = load_network(out, "socdag")
    assert metadata.problem == "socdag" and net.mode == "pair" and net.binding == "late"
    assert read_metadata(out.with_name("socdag.last.zip")).num_timesteps >= 64
    inst = load_instance("sc_rx")
    assert validate(inst, PpoSolver(problem="socdag", policy=str(out)).solve(inst)) == []
    with pytest.raises(CheckpointError, match="socdag"):
        load_network(out, "jobshop")
    with pytest.raises(CheckpointError, match="jobshop"):
        load_network("jobshop-default", "socdag")


def test_shipped_socdag_policy_schedules_validly_and_deterministically():
    from schedgym.agents.checkpoint import read_metadata, resolve_policy_path
    from schedgym.registry import make_solver

    metadata = read_metadata(resolve_policy_path("socdag-default"))
    assert metadata.problem == "socdag" and metadata.train["mode"] == "pair" and metadata.train["binding"] == "late"
    solver = make_solver("socdag", "ppo")
    for name in ("wifi_rx", "stream-rate80-noise0.2-s0"):
        inst = load_instance(name)
        first, second = solver.solve(inst), solver.solve(inst)
        assert validate(inst, first) == []
        assert np.array_equal(first.pe, second.pe) and np.array_equal(first.start_us, second.start_us)


def test_env_always_shows_a_legal_action_when_more_tasks_are_ready_than_fit():
    env = SocDagEnv(stream_instance(120.0, 60, 0.2, seed=2), max_tasks=8, queue_capacity=1)
    env.reset(seed=0)
    env.action_space.seed(0)
    done = False
    while not done:
        assert env.action_masks().any()
        _, _, done, _, info = env.step(env.action_space.sample())
    assert validate(env.sim.instance, info["solution"]) == []


def test_rule_demonstrations_refuse_a_binding_the_rule_does_not_run_with():
    from schedgym.agents.imitation import collect_rule_demonstrations
    from schedgym.envs.socdag import StreamGenerator

    with pytest.raises(ValueError, match="pick the other binding"):
        collect_rule_demonstrations(StreamGenerator((60.0, 60.0), (0.2, 0.2), 4), 1, seed=0, rule="srpt", binding="early")
