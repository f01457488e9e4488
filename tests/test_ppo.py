"""The batched PPO trainer: advantages, masking, a short run that checkpoints, resumes and reproduces."""

import shutil
from dataclasses import replace

import pytest
import torch

from schedgym.agents.checkpoint import CheckpointError, load_network, read_metadata
from schedgym.agents.gnn import GnnConfig
from schedgym.agents.ppo import generalized_advantages, masked_distribution, train_batched
from schedgym.agents.train import TrainConfig

TINY = TrainConfig(
    problem="jobshop", sizes="6x6,8x5", total_steps=64, n_envs=4, n_steps=8, batch_size=16, n_epochs=2,
    learning_rate=1e-3, eval_every_steps=32, val_sizes="6x6", val_instances_per_size=2, bc_instances=0,
    trainer="batched", gnn=GnnConfig(hidden_dim=8, n_layers=1, head_hidden_dim=8),
)


def test_advantages_follow_the_gae_recursion_and_stop_at_episode_ends():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [0.25], [1.0]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    last_value = torch.tensor([4.0])
    gamma, lam = 0.9, 0.8
    # by hand, from the last step back: the episode ends after step 1, so step 1 does not bootstrap from step 2
    delta2 = 3.0 + gamma * 4.0 - 1.0
    delta1 = 2.0 - 0.25
    delta0 = 1.0 + gamma * 0.25 - 0.5
    expected = torch.tensor([[delta0 + gamma * lam * delta1], [delta1], [delta2]])
    torch.testing.assert_close(generalized_advantages(rewards, values, dones, last_value, gamma, lam), expected)


def test_masked_distribution_never_picks_an_illegal_action():
    logits = torch.tensor([[5.0, 0.0, -1.0], [0.0, 9.0, 0.0]])
    mask = torch.tensor([[False, True, True], [True, False, False]])
    distribution = masked_distribution(logits, mask)
    assert torch.all(distribution.probs[~mask] == 0)
    torch.testing.assert_close(distribution.probs[1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.isfinite(distribution.entropy()).all()
    samples = distribution.sample((200,))
    assert mask.gather(1, samples.T).all()


def test_a_short_run_checkpoints_resumes_and_reproduces(tmp_path):
    out = train_batched(TINY, tmp_path / "a.zip", log_dir=tmp_path / "runs")
    last = tmp_path / "a.last.zip"
    metadata = read_metadata(last)
    assert metadata.num_timesteps == 64 and metadata.train["trainer"] == "batched"
    assert [entry["steps"] for entry in metadata.figures["val_history"]] == [0, 32, 64]
    assert any((tmp_path / "runs").rglob("events.out.tfevents.*"))
    net, _ = load_network(out)  # the best checkpoint loads like any shipped policy
    assert net.config.hidden_dim == 8
    first_run = shutil.copy(last, tmp_path / "a64.zip")

    train_batched(replace(TINY, total_steps=96), tmp_path / "a.zip", resume=last, log_dir=None)
    resumed = read_metadata(last)
    assert resumed.num_timesteps == 96
    assert [entry["steps"] for entry in resumed.figures["val_history"]] == [0, 32, 64, 96]  # the history goes on

    train_batched(TINY, tmp_path / "b.zip", log_dir=None)
    first, again = load_network(first_run)[0].state_dict(), load_network(tmp_path / "b.last.zip")[0].state_dict()
    for key, value in first.items():
        torch.testing.assert_close(again[key], value, msg=f"{key} differs between two runs with one seed")
    changed = load_network(tmp_path / "a.last.zip")[0].state_dict()
    assert any(not torch.equal(changed[key], value) for key, value in first.items())  # the resumed steps trained


def test_a_bad_device_is_refused(tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cpu"):
            train_batched(replace(TINY, device="cuda"), tmp_path / "x.zip", log_dir=None)
    with pytest.raises(ValueError, match="device"):
        train_batched(replace(TINY, device="tpu"), tmp_path / "x.zip", log_dir=None)


@pytest.mark.parametrize(
    "options",
    [
        dict(problem="socdag", mode="pair", binding="late", stream_jobs=3),
        dict(problem="llmrouting"),
        dict(problem="memmap"),
        dict(problem="jobshop-blocking", sizes="5x4", val_sizes="5x4"),
    ],
)
def test_the_batched_trainer_runs_on_every_problem(tmp_path, options):
    config = replace(TINY, total_steps=32, n_steps=8, eval_every_steps=32, val_instances_per_size=1, **options)
    train_batched(config, tmp_path / "p.zip", log_dir=None)
    history = read_metadata(tmp_path / "p.last.zip").figures["val_history"]
    assert [entry["steps"] for entry in history] == [0, 32]  # validated before training and after the 32 decisions


def test_init_takes_the_weights_of_a_policy_of_the_same_network_only(tmp_path):
    config = replace(TINY, problem="jobshop-blocking", sizes="5x4", val_sizes="5x4", total_steps=0, val_instances_per_size=1, gnn=GnnConfig())
    start = load_network(train_batched(config, tmp_path / "b.zip", init="jobshop-default", log_dir=None), "jobshop-blocking")[0]
    shipped = load_network("jobshop-default")[0]
    for name, value in shipped.state_dict().items():
        assert torch.equal(start.state_dict()[name], value), name
    with pytest.raises(CheckpointError, match="SocDagGnn"):
        train_batched(config, tmp_path / "c.zip", init="socdag-default", log_dir=None)


def test_ppo_from_scratch_closes_most_of_the_gap_to_the_best_rule(tmp_path):
    """The trainer learns: a fresh network's greedy schedules of held-out 6x6 instances start far behind the best
    rule; a few thousand PPO decisions bring them within a fraction of that distance."""
    config = replace(
        TINY, sizes="6x6", total_steps=4096, n_envs=32, n_steps=32, batch_size=256, n_epochs=4, eval_every_steps=4096,
        val_instances_per_size=8, gnn=GnnConfig(hidden_dim=16, n_layers=2, head_hidden_dim=16),
    )
    train_batched(config, tmp_path / "p.zip", log_dir=None)
    history = read_metadata(tmp_path / "p.last.zip").figures["val_history"]
    start, end = history[0]["gap_vs_best_rule_pct"], history[-1]["gap_vs_best_rule_pct"]
    assert start > 15.0  # untrained: far behind the best rule
    assert end < start / 3, history


def test_critic_warmup_moves_only_the_critic(tmp_path):
    config = replace(TINY, total_steps=64, eval_every_steps=64, critic_warmup_steps=64)
    train_batched(config, tmp_path / "w.zip", log_dir=None)
    start = load_network(tmp_path / "w.last.zip")[0]  # trained 64 decisions, all of them in the warm-up
    fresh = train_batched(replace(config, total_steps=0), tmp_path / "f.zip", log_dir=None)  # the same initial weights
    initial = load_network(fresh)[0].state_dict()
    for name, value in start.state_dict().items():
        if name.startswith("critic."):
            continue
        assert torch.equal(value, initial[name]), name
    assert any(not torch.equal(value, initial[name]) for name, value in start.state_dict().items() if name.startswith("critic."))
