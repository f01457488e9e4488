import zipfile

import numpy as np
import pytest
import torch

from schedgym.agents.checkpoint import CheckpointError, PolicyMetadata, add_metadata, load_network, read_metadata
from schedgym.agents.gnn import GnnConfig, JobShopGnn
from schedgym.agents.rollout import POLICY_ENV_OPTIONS, run_policy, run_rollouts, stack_observations
from schedgym.agents.solvers import PpoSolver
from schedgym.agents.train import TrainConfig, train
from schedgym.envs.jobshop import JobShopEnv, generate_taillard, load_benchmark, validate


def _obs(instance, **padding):
    env = JobShopEnv(instance, **POLICY_ENV_OPTIONS, **padding)
    return env.reset(seed=0)[0]


def test_one_logit_per_job_on_any_size():
    net = JobShopGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16))
    for inst in (load_benchmark("ft06"), load_benchmark("ta71")):
        logits, value = net(stack_observations([_obs(inst)]))
        assert logits.shape == (1, inst.n_jobs) and value.shape == (1,)


def test_batching_and_padding_do_not_change_the_outputs():
    torch.manual_seed(0)
    net = JobShopGnn(GnnConfig(hidden_dim=16, head_hidden_dim=16)).eval()
    small, large = generate_taillard(4, 3, 1), generate_taillard(7, 5, 2)
    alone = [net(stack_observations([_obs(inst)])) for inst in (small, large)]
    padded = dict(max_jobs=7, max_ops=5, max_machines=5)
    batch_logits, batch_values = net(stack_observations([_obs(small, **padded), _obs(large, **padded)]))
    for k, inst in enumerate((small, large)):
        logits, value = alone[k]
        mask = _obs(inst)["action_mask"].astype(bool)
        assert torch.allclose(batch_logits[k, : inst.n_jobs][mask], logits[0][mask], atol=1e-5)
        assert torch.allclose(batch_values[k], value[0], atol=1e-5)


def test_wrong_observation_shape_is_named():
    net = JobShopGnn()
    obs = stack_observations([_obs(load_benchmark("ft06"))])
    with pytest.raises(ValueError, match="expected 3 dimensions"):
        net({**obs, "op_features": obs["op_features"][0]})
    with pytest.raises(ValueError, match="features per node"):
        net({**obs, "op_features": obs["op_features"][..., :3]})
    with pytest.raises(ValueError, match="keys"):
        net({"op_features": obs["op_features"]})


TINY = dict(
    sizes="5x4,6x5", n_envs=2, n_steps=32, batch_size=32, n_epochs=1, eval_every_steps=64, checkpoint_every_steps=64,
    val_sizes="6x5", val_instances_per_size=2, torch_threads=1, gnn=GnnConfig(hidden_dim=16, head_hidden_dim=16),
    bc_instances=0,
)


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy")
    out = train(TrainConfig(total_steps=128, **TINY), folder / "p.zip", log_dir=folder / "runs", progress_bar=False)
    return out


def test_training_writes_checkpoints_with_metadata(tiny_policy):
    meta = read_metadata(tiny_policy)
    assert meta.problem == "jobshop" and meta.gnn["hidden_dim"] == 16 and meta.train["sizes"] == "5x4,6x5"
    assert meta.figures["val_history"] and (tiny_policy.parent / "p.last.zip").exists()
    assert list((tiny_policy.parent / "p_checkpoints").glob("*.zip"))
    assert list((tiny_policy.parent / "runs").rglob("events.out.tfevents*"))


def test_resume_continues_the_step_count(tiny_policy, tmp_path):
    out = train(TrainConfig(total_steps=192, **TINY), tmp_path / "r.zip", resume=tiny_policy.parent / "p.last.zip", log_dir=None, progress_bar=False)
    assert read_metadata(out.parent / "r.last.zip").num_timesteps == 192


def test_same_seed_same_weights(tmp_path):
    def weights(name):
        out = train(TrainConfig(total_steps=64, **TINY), tmp_path / f"{name}.zip", log_dir=None, progress_bar=False)
        return load_network(out.parent / f"{name}.last.zip")[0].state_dict()

    a, b = weights("a"), weights("b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_policy_solvers_give_valid_reproducible_schedules(tiny_policy):
    inst = load_benchmark("la01")
    greedy = PpoSolver(policy=str(tiny_policy)).solve(inst)
    assert validate(inst, greedy) == []
    sampler = PpoSolver(name="ppo-sample", policy=str(tiny_policy), samples=8)
    first, second = sampler.solve(inst, seed=1), sampler.solve(inst, seed=1)
    assert validate(inst, first) == [] and np.array_equal(first.start_times, second.start_times)
    assert first.makespan(inst) <= greedy.makespan(inst)
    limited = sampler.solve(inst, time_limit=0.5, seed=2)
    assert validate(inst, limited) == [] and limited.makespan(inst) <= greedy.makespan(inst)


def test_sampled_rollouts_differ_from_greedy(tiny_policy):
    net, _ = load_network(tiny_policy)
    inst = load_benchmark("la01")
    solutions = run_policy(net, [inst] * 6, greedy=False, generator=torch.Generator().manual_seed(0))
    assert len({s.makespan(inst) for s in solutions}) > 1


def test_a_replayed_prefix_is_followed_and_the_policy_takes_over_after_it(tiny_policy):
    net, _ = load_network(tiny_policy)
    inst = load_benchmark("la01")
    greedy = run_rollouts(net, [inst])[0]
    replayed = run_rollouts(net, [inst], prefixes=[greedy.actions])[0]
    assert replayed.actions == greedy.actions
    assert np.array_equal(replayed.solution.start_times, greedy.solution.start_times)
    cut = len(greedy.actions) // 2
    generator = torch.Generator().manual_seed(3)
    tails = run_rollouts(net, [inst] * 6, greedy=False, generator=generator, prefixes=[greedy.actions[:cut]] * 6)
    for tail in tails:
        assert tail.actions[:cut] == greedy.actions[:cut] and validate(inst, tail.solution) == []
    assert len({tuple(tail.actions[cut:]) for tail in tails}) > 1


def test_checkpoint_errors_say_what_to_do(tiny_policy, tmp_path):
    with pytest.raises(CheckpointError, match="not found.*schedgym train"):
        load_network(tmp_path / "missing.zip")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_network(corrupt)
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("data", "{}")
    with pytest.raises(CheckpointError, match="not a schedgym checkpoint"):
        load_network(plain)
    other = tmp_path / "other.zip"
    other.write_bytes(tiny_policy.read_bytes())
    meta = read_metadata(other)
    add_metadata(other, PolicyMetadata(**{**meta.__dict__, "problem": "memmap"}))
    with pytest.raises(CheckpointError, match="holds a 'memmap' policy"):
        load_network(other)


def test_shipped_policy_beats_mwkr_on_taillard_15x15():
    from schedgym.baselines.jobshop import DispatchingRule
    from schedgym.envs.jobshop import resolve_suite

    solver = PpoSolver()  # the shipped jobshop-default
    assert solver.metadata.problem == "jobshop" and solver.metadata.num_timesteps >= 0
    policy_gaps, rule_gaps = [], []
    for inst in resolve_suite("taillard-15x15"):
        solution = solver.solve(inst)
        assert validate(inst, solution) == []
        policy_gaps.append(solution.makespan(inst) / inst.best_bound - 1)
        rule_gaps.append(DispatchingRule("mwkr").solve(inst).makespan(inst) / inst.best_bound - 1)
    assert np.mean(policy_gaps) < np.mean(rule_gaps)


def test_a_problem_without_a_policy_is_named_with_the_ones_that_have_one(tmp_path):
    from dataclasses import replace

    from schedgym.agents.gnn import GnnConfig
    from schedgym.agents.networks import build_network

    with pytest.raises(ValueError, match="policies exist for jobshop, jobshop-improve, jobshop-blocking, socdag, llmrouting, memmap"):
        build_network("singlemachine", GnnConfig())
    with pytest.raises(ValueError, match="train one of jobshop, jobshop-improve, jobshop-blocking, socdag, llmrouting, memmap"):
        train(replace(TrainConfig(), problem="singlemachine"), tmp_path / "x.zip", log_dir=None, progress_bar=False)
    assert not (tmp_path / "x.zip").exists()
