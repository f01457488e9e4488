"""The batched PPO trainer: advantages, masking, a short run that checkpoints, resumes and reproduces."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from schedgym.agents.checkpoint import CheckpointError, load_network, read_metadata
from schedgym.agents.gnn import GnnConfig
from schedgym.agents.ppo import RolloutBuffer, _group_advantage_rollout, _update, generalized_advantages, learning_rate_at, masked_distribution, train_batched
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
    # pieces of 3 states: the rollout's forward passes over 4 slots and the update's minibatches of 16 run in pieces
    config = replace(TINY, total_steps=32, n_steps=8, eval_every_steps=32, val_instances_per_size=1, chunk_states=3, **options)
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


@pytest.mark.parametrize("advantage", ["gae", "group"])
def test_ppo_from_scratch_closes_most_of_the_gap_to_the_best_rule(tmp_path, advantage):
    """The trainer learns, with a critic or with group advantages: a fresh network's greedy schedules of held-out
    6x6 instances start far behind the best rule; a few thousand PPO decisions bring them within a fraction of that
    distance."""
    config = replace(
        TINY, sizes="6x6", total_steps=4096, n_envs=32, n_steps=32 if advantage == "gae" else 64, batch_size=256, n_epochs=4,
        eval_every_steps=4096, val_instances_per_size=8, gnn=GnnConfig(hidden_dim=16, n_layers=2, head_hidden_dim=16),
        advantage=advantage, group_size=8,
    )
    train_batched(config, tmp_path / "p.zip", log_dir=None)
    history = read_metadata(tmp_path / "p.last.zip").figures["val_history"]
    start, end = history[0]["gap_vs_best_rule_pct"], history[-1]["gap_vs_best_rule_pct"]
    assert start > 15.0  # untrained: far behind the best rule
    assert end < start / 3, history


def test_the_slots_of_a_group_start_on_the_same_instance():
    from schedgym.agents.rollout import POLICY_ENV_OPTIONS
    from schedgym.envs.jobshop import TaillardGenerator, parse_sizes
    from schedgym.envs.jobshop.batched import JobShopBatch

    batch = JobShopBatch(TaillardGenerator(parse_sizes("6x6,8x5")), 6, seed=0, interruption_rate=0.1, **POLICY_ENV_OPTIONS)
    batch.seed_groups(7, 3)
    batch.reset()
    returns = np.zeros(6)
    done = np.zeros(6, dtype=bool)
    while not done.all():  # the first legal job in every slot: the same decisions where the instance is the same
        _, reward, finished, _ = batch.step(batch.action_masks().argmax(axis=1))
        returns += np.where(done, 0.0, reward)
        done |= finished
    assert returns[0] == returns[1] == returns[2] and returns[3] == returns[4] == returns[5]
    assert returns[0] != returns[3]
    with pytest.raises(ValueError, match="multiple of group_size"):
        batch.seed_groups(7, 4)


def test_group_advantages_compare_each_first_episode_with_the_rest_of_its_group():
    T, B = 5, 4  # groups {0, 1} and {2, 3}
    buffer = RolloutBuffer({"x": np.zeros((B, 1), dtype=np.float32)}, 2, T, torch.device("cpu"))
    buffer.actions[:] = torch.arange(T)[:, None] * 10 + torch.arange(B)[None, :]  # action = 10 t + slot: names the decision
    buffer.rewards[:] = torch.tensor([[1.0, 2.0, 4.0, 1.0]]).repeat(T, 1)
    ends = {0: 2, 1: 4, 2: 1}  # slot 2 ends at step 1 and goes on into a second episode; slot 3 never ends
    for slot, t in ends.items():
        buffer.dones[t, slot] = 1.0
    rollout = _group_advantage_rollout(buffer, T, group_size=2)
    # group {2, 3} has a running episode: left out; slot 0 keeps steps 0-2 (return 3), slot 1 steps 0-4 (return 10)
    assert sorted(rollout["actions"].tolist()) == sorted([10 * t for t in range(3)] + [10 * t + 1 for t in range(5)])
    advantage = dict(zip(rollout["actions"].tolist(), rollout["advantages"].tolist()))
    assert advantage[0] == advantage[20] == 3.0 - 10.0 and advantage[1] == advantage[41] == 10.0 - 3.0
    with pytest.raises(ValueError, match="n_steps"):
        _group_advantage_rollout(buffer, 1, group_size=2)


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


def test_the_learning_rate_anneals_linearly_to_its_final_value_and_resumes_where_it_was(tmp_path):
    config = replace(TINY, learning_rate=1e-3, learning_rate_final=1e-4, total_steps=64)
    assert [learning_rate_at(config, steps) for steps in (0, 32, 64, 128)] == pytest.approx([1e-3, 5.5e-4, 1e-4, 1e-4])
    assert learning_rate_at(replace(config, learning_rate_final=None), 32) == 1e-3
    out = train_batched(replace(config, total_steps=32), tmp_path / "a.zip", log_dir=None)
    from sb3_contrib import MaskablePPO

    resumed = MaskablePPO.load(out.with_name("a.last.zip"))
    assert resumed.num_timesteps == 32
    train_batched(config, tmp_path / "a.zip", resume=out.with_name("a.last.zip"), log_dir=None)
    finished = MaskablePPO.load(out.with_name("a.last.zip"))
    # the last rollout's update ran at the rate of step 32 of 64 (set before each update, from the step count)
    assert finished.policy.optimizer.param_groups[0]["lr"] == pytest.approx(5.5e-4)


def _jobshop_rollout() -> dict:
    """A flat rollout of 3 steps in 5 slots of small job shops: random legal actions, log-probabilities, values and
    advantages."""
    from schedgym.agents.rollout import POLICY_ENV_OPTIONS
    from schedgym.envs.jobshop import TaillardGenerator, parse_sizes
    from schedgym.envs.jobshop.batched import JobShopBatch

    batch = JobShopBatch(TaillardGenerator(parse_sizes("6x6,8x5")), 5, seed=3, **POLICY_ENV_OPTIONS)
    observation = batch.reset()
    buffer = RolloutBuffer(observation, batch.action_masks().shape[1], 3, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    for t in range(3):
        for key, value in observation.items():
            buffer.observations[key][t] = torch.from_numpy(value)
        buffer.masks[t] = torch.from_numpy(batch.action_masks())
        buffer.actions[t] = torch.multinomial(buffer.masks[t].float(), 1, generator=generator).squeeze(1)
        buffer.log_probs[t] = -torch.rand(5, generator=generator)
        buffer.values[t] = torch.rand(5, generator=generator)
        observation, *_ = batch.step(buffer.actions[t].numpy())
    advantages = torch.randn(3, 5, generator=generator)
    return buffer.flat(advantages, advantages + buffer.values)


def _gradients(net: torch.nn.Module, rollout: dict, config: TrainConfig) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The gradient of one minibatch of all of ``rollout`` (the weights stay: SGD at rate 0) and its losses."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    losses = _update(net, optimizer, rollout, replace(config, n_epochs=1, batch_size=len(rollout["actions"])), torch.Generator().manual_seed(1))
    return {name: p.grad.clone() for name, p in net.named_parameters()}, losses


def test_a_minibatch_in_pieces_has_the_gradient_of_one_pass():
    from schedgym.agents.gnn import JobShopGnn

    rollout = _jobshop_rollout()
    torch.manual_seed(0)
    net = JobShopGnn(TINY.gnn)
    gradients, losses = zip(*(_gradients(net, rollout, replace(TINY, chunk_states=chunk, value_clip_range=0.1)) for chunk in (15, 4)))
    for name, gradient in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], gradient, msg=f"{name}: pieces of 4 and one pass of 15 disagree")
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert any(gradient.abs().max() > 0 for gradient in gradients[0].values())


def test_the_policy_is_trained_at_the_temperature_it_is_sampled_at(tmp_path):
    from schedgym.agents.gnn import JobShopGnn

    rollout = _jobshop_rollout()
    torch.manual_seed(0)
    net = JobShopGnn(TINY.gnn)
    with torch.no_grad():
        logits = net(rollout["observations"])[0]
        rollout["log_probs"] = masked_distribution(logits / 0.25, rollout["masks"]).log_prob(rollout["actions"])
    at_rollout_temperature = _gradients(net, rollout, replace(TINY, policy_temperature=0.25))[1]
    assert at_rollout_temperature["approx_kl"] == pytest.approx(0.0, abs=1e-6)  # the same distribution: ratio 1
    assert _gradients(net, rollout, TINY)[1]["approx_kl"] > 1e-3
    with pytest.raises(ValueError, match="policy_temperature"):
        train_batched(replace(TINY, policy_temperature=0.0), tmp_path / "x.zip", log_dir=None)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(advantage="td"), "unknown advantage"),
        (dict(advantage="group", group_size=3), "filling the 4 slots"),
        (dict(advantage="group", group_size=1), "at least 2"),
        (dict(advantage="group", group_size=2, critic_warmup_steps=64), "critic_warmup_steps"),
    ],
)
def test_group_settings_that_cannot_work_are_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        train_batched(replace(TINY, **options), tmp_path / "x.zip", log_dir=None)
    assert not list(tmp_path.iterdir())  # refused before anything is written
