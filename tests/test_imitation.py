import numpy as np
import pytest
import torch

from schedgym.agents.gnn import GnnConfig, JobShopGnn
from schedgym.agents.imitation import behaviour_cloning, collect_demonstrations, load_demonstrations, save_demonstrations, teacher_rollout
from schedgym.agents.rollout import POLICY_ENV_OPTIONS
from schedgym.agents.train import TrainConfig, train
from schedgym.agents.checkpoint import read_metadata
from schedgym.baselines.jobshop import CpSatJobShop
from schedgym.envs.jobshop import JobShopEnv, load_benchmark


def test_teacher_replays_an_optimal_schedule_exactly():
    inst = load_benchmark("ft06")
    expert = CpSatJobShop().solve(inst, time_limit=20)
    observations, actions, returns = teacher_rollout(inst, expert, {"max_jobs": 6, "max_ops": 6, "max_machines": 6})
    env = JobShopEnv(inst, **POLICY_ENV_OPTIONS)
    env.reset(seed=0)
    for action in actions:
        _, _, terminated, _, info = env.step(action)
    assert terminated and info["makespan"] == expert.makespan(inst) == 55
    assert len(observations) == len(actions) == len(returns) and returns[0] <= returns[-1] <= 0


def test_behaviour_cloning_fits_the_teacher(tmp_path):
    demos = collect_demonstrations([(6, 5)], 3, 1.0, seed=0)
    save_demonstrations(demos, str(tmp_path / "d.npz"))
    demos = load_demonstrations(str(tmp_path / "d.npz"))
    torch.manual_seed(0)
    net = JobShopGnn(GnnConfig(hidden_dim=32, head_hidden_dim=32))
    accuracy = behaviour_cloning(net, demos, epochs=40, batch_size=16, learning_rate=3e-3, seed=0)
    chance = float(np.mean(1.0 / demos.observations["action_mask"].sum(axis=1)))
    assert accuracy[-1] > max(accuracy[0], chance + 0.2)


def test_training_with_a_warm_start(tmp_path):
    config = TrainConfig(
        sizes="5x4", total_steps=64, n_envs=2, n_steps=32, batch_size=32, n_epochs=1, eval_every_steps=64,
        val_sizes="5x4", val_instances_per_size=1, torch_threads=1, gnn=GnnConfig(hidden_dim=16, head_hidden_dim=16),
        bc_instances=2, bc_sizes="5x4", bc_time_limit_s=0.5, bc_epochs=2,
    )
    out = train(config, tmp_path / "w.zip", log_dir=None, progress_bar=False, demos_cache=tmp_path / "demos.npz")
    figures = read_metadata(out).figures
    assert figures["bc_decisions"] > 0 and len(figures["bc_accuracy"]) == 2
    assert (tmp_path / "demos.npz").exists()


def test_warm_start_refuses_dagger_without_an_online_teacher_and_cuda_without_a_gpu(tmp_path, monkeypatch):
    config = TrainConfig(
        sizes="5x4", total_steps=8, n_envs=1, n_steps=8, batch_size=8, n_epochs=1, val_sizes="5x4", val_instances_per_size=1,
        torch_threads=1, gnn=GnnConfig(hidden_dim=16, head_hidden_dim=16), bc_instances=1, bc_sizes="5x4", bc_time_limit_s=0.5,
        bc_epochs=1, dagger_rounds=1,
    )
    with pytest.raises(ValueError, match="dagger_rounds"):
        train(config, tmp_path / "d.zip", log_dir=None, progress_bar=False)
    assert not (tmp_path / "d.zip").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    demos = collect_demonstrations([(5, 4)], 1, 0.5, seed=0)
    with pytest.raises(ValueError, match="bc_device"):
        behaviour_cloning(JobShopGnn(GnnConfig(hidden_dim=16)), demos, epochs=1, batch_size=8, learning_rate=1e-3, seed=0, device="cuda")


def test_placement_teacher_replays_cp_sat_maps_of_the_training_families_only():
    from schedgym.agents.imitation import collect_placement_demonstrations
    from schedgym.agents.recipes import RECIPES
    from schedgym.baselines.memmap import CpSatMemMap
    from schedgym.envs.memmap import MemoryMappingEnv, metrics, validate
    from schedgym.envs.memmap.tracer import TraceGenerator

    generator = TraceGenerator(families=("resnet",))
    demos = collect_placement_demonstrations(generator, 2, seed=3, time_limit_s=2.0)
    masks = demos.observations["action_mask"]
    assert np.all(masks[np.arange(len(demos)), demos.actions] == 1)
    # replay the recorded actions of the first trace in a fresh env: the same map quality as CP-SAT's own map
    env = MemoryMappingEnv(generator)
    env.reset(seed=3)
    instance = env.instance
    assert instance.group.startswith("resnet-")
    terminated, step = False, 0
    while not terminated:
        _, _, terminated, _, info = env.step(int(demos.actions[step]))
        step += 1
    assert validate(instance, info["solution"]) == []
    expert = metrics(instance, CpSatMemMap().solve(instance, time_limit=2.0, seed=3))["improvement_pct"]
    assert info["metrics"]["improvement_pct"] == pytest.approx(expert, abs=0.5)
    assert demos.returns[0] == pytest.approx(info["metrics"]["improvement_pct"] / 100.0, rel=1e-4)

    config = TrainConfig(problem="memmap", trace_families="mlp", val_instances_per_size=4)
    assert all(inst.group.startswith("mlp-") for inst in RECIPES["memmap"].validation_instances(config))


def test_placement_dagger_labels_the_states_the_student_reaches_with_cp_sat_best_completions():
    from schedgym.agents.gnn_memmap import MemMapGnn
    from schedgym.agents.imitation import collect_placement_demonstrations, greedy_actor
    from schedgym.baselines.memmap import CpSatMemMap
    from schedgym.envs.memmap import SLOW, MemoryMappingEnv, metrics, validate
    from schedgym.envs.memmap.tracer import TraceGenerator

    torch.manual_seed(0)
    student = MemMapGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16))
    generator = TraceGenerator(families=("transformer",))  # seed 6: a 58-buffer trace where a stale label would lose
    demos = collect_placement_demonstrations(generator, 1, seed=6, time_limit_s=2.0, student=student)
    env = MemoryMappingEnv(generator)
    obs, _ = env.reset(seed=6)
    act, solver = greedy_actor(student), CpSatMemMap()

    def best_completion_s(extra: dict) -> float:
        """Modelled runtime of CP-SAT's best map with the decided buffers (and ``extra``) pinned, validated."""
        fixed = {int(b): int(env.placement.offset[b]) for b in env.order[: env.step_index]} | extra
        completed = solver.solve(env.instance, time_limit=2.0, seed=0, fixed=fixed)
        assert validate(env.instance, completed) == []
        return metrics(env.instance, completed)["runtime_s"]

    disagreements = 0
    for k, label in enumerate(demos.actions.tolist()):
        assert all(np.array_equal(obs[key], demos.observations[key][k]) for key in obs)  # the student drove here
        assert obs["action_mask"][label] == 1
        # the label loses nothing against the best completion of this state
        buffer = env.order[env.step_index]
        chosen = {buffer: SLOW if label == 0 else env.current_candidates[label - 1][0]}
        assert best_completion_s(chosen) == pytest.approx(best_completion_s({}), rel=1e-3)
        action = act([obs])[0]
        disagreements += action != label
        obs, _, done, _, _ = env.step(action)
    assert done and disagreements > 0


def test_record_teacher_runs_episodes_side_by_side_and_keeps_them_in_order():
    from schedgym.agents.imitation import record_teacher
    from schedgym.envs.socdag import SocDagEnv, StreamGenerator

    streams = StreamGenerator((60.0, 60.0), (0.2, 0.2), 4)

    def teacher(env, rng):  # a random legal action: uses the episode's own rng
        return int(rng.choice(np.flatnonzero(env.action_masks())))

    def actor(observations):  # the last legal action of each observation
        return [int(np.flatnonzero(obs["action_mask"])[-1]) for obs in observations]

    def run(parallel):
        return record_teacher(lambda: SocDagEnv(streams, mode="pair", binding="late"), 5, 11, teacher, actor, parallel=parallel)

    # the oracle: episodes one after the other, episode k reset with seed 11 + k and its own rng seeded alike
    env = SocDagEnv(streams, mode="pair", binding="late")
    expected_obs, expected_labels = [], []
    for k in range(5):
        obs, _ = env.reset(seed=11 + k)
        rng, done = np.random.default_rng(11 + k), False
        while not done:
            expected_obs.append(obs)
            expected_labels.append(teacher(env, rng))
            obs, _, done, _, _ = env.step(actor([obs])[0])
    for demos in (run(1), run(3)):
        assert demos.actions.tolist() == expected_labels
        assert all(np.array_equal(demos.observations[key], np.stack([o[key] for o in expected_obs])) for key in expected_obs[0])
