"""PPO over a batched engine, in one file: rollout, GAE, clipped update, validation, checkpoints.

    schedgym train jobshop --trainer batched --init jobshop-default --steps 2000000 --out policies/jobshop.zip

The loop of :func:`train_batched`, per iteration:

1. **Rollout.** ``n_steps`` decisions in each of the engine's ``n_envs`` slots (one compiled engine step and one
   batched forward per decision); observations go straight from the engine's arrays into tensors on ``device``.
2. **Advantages.** ``advantage="gae"``: generalized advantage estimation over the rollout (``gamma``,
   ``gae_lambda``), an episode's end cutting the bootstrap. ``advantage="group"``: the rollout is whole episodes
   instead, ``group_size`` of them on each instance (:meth:`~schedgym.envs.batching.SlotBatch.seed_groups`), run
   until every slot has finished its first one (``n_steps`` caps it); each decision's advantage is its episode's
   return minus the mean return of the other episodes of the same instance. That baseline needs no critic and takes
   out the instance's own difficulty, which in scheduling is most of a return's variance: what is left is what the
   sampled decisions changed.
3. **Update.** ``n_epochs`` passes over the shuffled rollout in minibatches of ``batch_size``: masked categorical
   over the legal actions, advantages normalized per minibatch, clipped policy objective (``clip_range``), value
   loss (clipped around the old value with ``value_clip_range`` > 0), entropy bonus, gradient-norm clipping.
   The policy sampled and trained is the network's at ``policy_temperature`` (softmax of logits / T): below 1 the
   rollouts stay near the greedy policy that validation runs and the zoo ships, and PPO explores where the greedy
   choice is close.
   For the first ``critic_warmup_steps`` decisions only the critic learns (value loss alone, the shared layers and
   the actor frozen), so that a warm-started policy is first given a critic of its own returns.

Every ``eval_every_steps`` the greedy policy runs the recipe's fixed validation set (:class:`Validation`, the same
as the SB3 trainer's); the best policy is written to ``out``, the latest state to ``<out stem>.last.zip`` (resume
it with ``--resume``: weights, optimizer state and step count). Checkpoints are MaskablePPO zips with the schedgym
metadata, so every loader (zoo, solvers, export, ``--resume`` of either trainer) reads them. TensorBoard gets the
losses, KL, clip fraction, episode returns, validation gap and where the time went (env / forward / update).

Beside MaskablePPO (which also trains on the batched engine through ``BatchedVecEnv``): at the recipe's settings
both reach the same rate, bound by the network's forward and backward passes (``benchmarks/ppo_speed.py``: 347
and 359 env steps/s on 2 cores). This loop keeps the rollout in tensors on ``device``, so the network can run
on a GPU while the engine runs on the CPU, and it reports where its time goes.
"""

from __future__ import annotations

import copy
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sb3_contrib import MaskablePPO

from schedgym.agents.checkpoint import CheckpointError, load_network, read_metadata, resolve_policy_path
from schedgym.agents.gnn import GnnConfig
from schedgym.agents.heap import keep_freed_heap_memory
from schedgym.agents.policy import GnnMaskablePolicy
from schedgym.agents.recipes import RECIPES
from schedgym.agents.train import TrainConfig, Validation, save_with_metadata, warm_start
from schedgym.envs.vector import BatchedVecEnv

_MASKED_LOGIT = -1e8  # logit of an illegal action: probability 0, but finite so that entropy stays defined


def masked_distribution(logits: torch.Tensor, mask: torch.Tensor) -> torch.distributions.Categorical:
    """Categorical over the legal actions only: logits ``[N, A]``, bool mask ``[N, A]`` (at least one legal per row)."""
    return torch.distributions.Categorical(logits=torch.where(mask, logits, torch.full_like(logits, _MASKED_LOGIT)))


def generalized_advantages(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor, gamma: float, gae_lambda: float) -> torch.Tensor:
    """GAE advantages ``[T, B]`` of a rollout: rewards, values ``[T, B]`` (value of the state each action was taken
    in), dones ``[T, B]`` (1.0 where the action ended its episode; the slot then starts a new one), last_value
    ``[B]`` (value of the state after the rollout)."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    next_value = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * alive - values[t]
        running = delta + gamma * gae_lambda * alive * running
        advantages[t] = running
        next_value = values[t]
    return advantages


class RolloutBuffer:
    """One rollout on ``device``: observations (each field ``[T, B, ...]``), legal-action masks ``[T, B, A]``,
    actions, log-probabilities, values, rewards and dones ``[T, B]``."""

    def __init__(self, observation: dict[str, np.ndarray], n_actions: int, n_steps: int, device: torch.device) -> None:
        n_envs = len(next(iter(observation.values())))
        self.observations = {
            key: torch.zeros((n_steps, *value.shape), dtype=torch.from_numpy(value[:1]).dtype, device=device)
            for key, value in observation.items()
        }
        self.masks = torch.zeros((n_steps, n_envs, n_actions), dtype=torch.bool, device=device)
        self.actions = torch.zeros((n_steps, n_envs), dtype=torch.long, device=device)
        self.log_probs, self.values, self.rewards, self.dones = (torch.zeros((n_steps, n_envs), device=device) for _ in range(4))

    def flat(self, advantages: torch.Tensor, returns: torch.Tensor, n_steps: int | None = None, keep: torch.Tensor | None = None) -> dict:
        """Every field of the first ``n_steps`` steps (default: all) with the ``[T, B]`` axes merged into one axis,
        only the decisions where the bool ``keep`` ``[T, B]`` holds (default: all); advantages and returns
        ``[T, B]``."""
        n_steps = n_steps or self.actions.shape[0]
        rows = None if keep is None else keep.reshape(-1).nonzero().squeeze(1)

        def merge(tensor: torch.Tensor) -> torch.Tensor:
            merged = tensor[:n_steps].reshape(-1, *tensor.shape[2:])
            return merged if rows is None else merged[rows]

        return {
            "observations": {key: merge(value) for key, value in self.observations.items()},
            "masks": merge(self.masks), "actions": merge(self.actions), "log_probs": merge(self.log_probs),
            "values": merge(self.values), "advantages": merge(advantages), "returns": merge(returns),
        }


def _to_device(observation: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(value).to(device, non_blocking=True) for key, value in observation.items()}


def _check_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device (torch {torch.__version__}); train with --device cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"unknown device {device!r}; use cpu or cuda")
    return torch.device(device)


def _model(config: TrainConfig, env: BatchedVecEnv, device: torch.device, resume: str | Path | None, init: str | Path | None) -> MaskablePPO:
    """The MaskablePPO object that holds the network, its optimizer and the step count (the checkpoint format)."""
    if resume is not None:
        model = MaskablePPO.load(resolve_policy_path(resume), env=env, device=device)
    else:
        model = MaskablePPO(
            GnnMaskablePolicy, env, learning_rate=config.learning_rate, seed=config.seed, device=device,
            policy_kwargs={"gnn": config.gnn.to_dict(), "problem": config.problem, "mode": config.mode, "binding": config.binding},
        )
        if init is not None:  # any policy of the same network will do (the blocking shop starts from the job shop's)
            net, metadata = load_network(init, problem=None)
            if type(net) is not type(model.policy.net):
                raise CheckpointError(f"--init {init} holds a {type(net).__name__} ({metadata.problem}), the {config.problem} policy is a {type(model.policy.net).__name__}; drop --init or pass a {config.problem} policy")
            if GnnConfig(**metadata.gnn) != config.gnn:  # a checkpoint from before a field was added has its default
                raise CheckpointError(f"--init {init} holds a network of shape {metadata.gnn}, the run asks for {config.gnn.to_dict()}; drop --init or match the gnn settings")
            model.policy.net.load_state_dict(net.state_dict())
    set_learning_rate(model.policy.optimizer, learning_rate_at(config, model.num_timesteps))
    return model


def train_batched(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: str | Path | None = None,
    init: str | Path | None = None,
    log_dir: str | Path | None = "runs",
    demos_cache: str | Path | None = None,
) -> Path:
    """Train with PPO on the problem's batched engine until ``config.total_steps`` decisions; returns ``out``.

    ``init``: start from this policy's weights (a shipped name or a checkpoint) instead of the behaviour-cloning
    warm start; ``resume``: continue a run from its checkpoint (``<out stem>.last.zip``).

    Raises:
        ValueError: ``config.device`` is unusable, ``config.policy_temperature`` is not positive, or the group
            settings do not fit the slots.
        CheckpointError: ``resume`` / ``init`` missing, unreadable or of another network.
    """
    if config.policy_temperature <= 0:
        raise ValueError(f"policy_temperature is {config.policy_temperature}; it divides the logits, so it must be > 0 (1 is the plain policy)")
    if config.advantage not in ("gae", "group"):
        raise ValueError(f"unknown advantage {config.advantage!r}; use gae (critic and GAE) or group (returns of the same instance compared)")
    if config.advantage == "group" and (config.group_size < 2 or config.n_envs % config.group_size):
        raise ValueError(f"group advantages need groups of at least 2 episodes filling the {config.n_envs} slots; group_size is {config.group_size}")
    if config.advantage == "group" and config.critic_warmup_steps > 0:
        raise ValueError("critic_warmup_steps trains a critic that group advantages never use; set it to 0 or use advantage='gae'")
    recipe = RECIPES[config.problem]
    device = _check_device(config.device)
    torch.set_num_threads(config.torch_threads)
    keep_freed_heap_memory()
    torch.manual_seed(config.seed)
    out = Path(out)
    env = BatchedVecEnv(recipe.make_batched_env(config))
    model = _model(config, env, device, resume, init)
    figures: dict = {}
    if resume is None and init is None and config.bc_instances > 0:
        model.policy.to("cpu")
        figures.update(warm_start(model, config, demos_cache))
        model.policy.to(device)
    net, optimizer = model.policy.net, model.policy.optimizer
    where = f"{platform.node() or 'host'} ({platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}, network on {device})"
    writer = _summary_writer(log_dir, out.stem)
    validation = Validation(config)
    if resume is not None:  # the run goes on: keep its validation history and best so far
        resumed = read_metadata(resolve_policy_path(resume)).figures
        validation.history = list(resumed.get("val_history", []))
        validation.best_gap = float(resumed.get("best_val_gap_vs_best_rule_pct", float("inf")))
    generator = torch.Generator(device=device).manual_seed(config.seed)

    def validate_and_save(steps: int) -> None:
        cpu_net = net if device.type == "cpu" else _cpu_copy(net)
        gap, mean_objective, improved = validation.evaluate(cpu_net, steps)
        if writer is not None:
            writer.add_scalar("val/gap_vs_best_rule_pct", gap, steps)
            writer.add_scalar("val/mean_objective", mean_objective, steps)
        run_figures = {**figures, "val_history": validation.history, "best_val_gap_vs_best_rule_pct": validation.best_gap}
        if improved:
            save_with_metadata(model, out, config, where, {**run_figures, "val_gap_vs_best_rule_pct": gap})
        save_with_metadata(model, out.with_name(f"{out.stem}.last.zip"), config, where, run_figures)

    observation = env.reset()
    buffer = RolloutBuffer(observation, env.action_space.n, config.n_steps, device)
    episode_returns: list[float] = []
    timing = {"env_s": 0.0, "forward_s": 0.0, "update_s": 0.0}
    started = time.perf_counter()
    steps_at_start = model.num_timesteps
    last_eval = model.num_timesteps if resume is not None else -config.eval_every_steps
    while model.num_timesteps < config.total_steps:
        if model.num_timesteps - last_eval >= config.eval_every_steps:
            validate_and_save(model.num_timesteps)
            last_eval = model.num_timesteps
        net.eval()
        if config.advantage == "group":
            # the groups' instances follow from the step count: a resumed run draws what the whole run would have
            env.engine.seed_groups(config.seed * 1_000_003 + model.num_timesteps, config.group_size)
            observation, n_steps = _collect(net, env, env.reset(), buffer, config, generator, timing, episode_returns, first_episodes_only=True)
            tick = time.perf_counter()
            rollout = _group_advantage_rollout(buffer, n_steps, config.group_size)
            critic_only = False
        else:
            observation, _ = _collect(net, env, observation, buffer, config, generator, timing, episode_returns)
            tick = time.perf_counter()
            with torch.no_grad():
                last_value = _forward_in_pieces(net, _to_device(observation, device), config.chunk_states)[1]
            advantages = generalized_advantages(buffer.rewards, buffer.values, buffer.dones, last_value, config.gamma, config.gae_lambda)
            rollout = buffer.flat(advantages, advantages + buffer.values)
            critic_only = model.num_timesteps < config.critic_warmup_steps
        set_learning_rate(optimizer, learning_rate_at(config, model.num_timesteps))
        losses = _update(net, optimizer, rollout, config, generator, critic_only)
        timing["update_s"] += time.perf_counter() - tick
        model.num_timesteps += len(rollout["actions"])
        if writer is not None:
            steps = model.num_timesteps
            for name, value in losses.items():
                writer.add_scalar(f"train/{name}", value, steps)
            if episode_returns:
                writer.add_scalar("rollout/episode_return_mean", float(np.mean(episode_returns)), steps)
            writer.add_scalar("train/learning_rate", optimizer.param_groups[0]["lr"], steps)
            writer.add_scalar("time/steps_per_s", (steps - steps_at_start) / (time.perf_counter() - started), steps)
            for name, seconds in timing.items():
                writer.add_scalar(f"time/{name}", seconds, steps)
        episode_returns.clear()
    elapsed = time.perf_counter() - started
    figures.update(
        train_wall_s=elapsed,
        train_steps_per_s=(model.num_timesteps - steps_at_start) / elapsed if elapsed > 0 else None,
        train_time_split_s=timing,
    )
    validate_and_save(model.num_timesteps)
    if writer is not None:
        writer.close()
    print({"out": str(out), "best_val_gap_vs_best_rule_pct": validation.best_gap, **{k: v for k, v in figures.items() if k != "val_history"}}, flush=True)
    return out


def _collect(
    net: torch.nn.Module, env: BatchedVecEnv, observation: dict[str, np.ndarray], buffer: RolloutBuffer, config: TrainConfig,
    generator: torch.Generator, timing: dict[str, float], episode_returns: list[float], first_episodes_only: bool = False,
) -> tuple[dict[str, np.ndarray], int]:
    """Fill ``buffer`` with ``config.n_steps`` decisions of every slot from ``observation``, the actions sampled from
    the policy at ``config.policy_temperature``; finished episodes' returns go to ``episode_returns``. Returns the
    observation after the last step and the number of steps taken: with ``first_episodes_only`` the rollout stops
    once every slot has finished the episode it started with (a slot that finishes earlier goes on into its next
    episode, which :func:`_group_advantage_rollout` leaves out)."""
    device = buffer.actions.device
    in_first_episode = np.ones(env.num_envs, dtype=bool)
    for t in range(config.n_steps):
        tick = time.perf_counter()
        obs_tensors = _to_device(observation, device)
        mask = torch.from_numpy(env.action_masks()).to(device)
        with torch.no_grad():
            logits, value = _forward_in_pieces(net, obs_tensors, config.chunk_states)
            distribution = masked_distribution(logits / config.policy_temperature, mask)
            action = torch.multinomial(distribution.probs, 1, generator=generator).squeeze(1)
            log_prob = distribution.log_prob(action)
        for key, tensor in obs_tensors.items():
            buffer.observations[key][t] = tensor
        buffer.masks[t], buffer.actions[t], buffer.log_probs[t], buffer.values[t] = mask, action, log_prob, value
        actions = action.cpu().numpy()
        tock = time.perf_counter()
        observation, reward, done, infos = env.step(actions)
        timing["forward_s"] += tock - tick
        timing["env_s"] += time.perf_counter() - tock
        buffer.rewards[t] = torch.from_numpy(reward).to(device)
        buffer.dones[t] = torch.from_numpy(done.astype(np.float32)).to(device)
        episode_returns.extend(info["episode"]["r"] for b, info in enumerate(infos) if "episode" in info and in_first_episode[b])
        if first_episodes_only:
            in_first_episode &= ~done
            if not in_first_episode.any():
                return observation, t + 1
    return observation, config.n_steps


def _group_advantage_rollout(buffer: RolloutBuffer, n_steps: int, group_size: int) -> dict:
    """The decisions of each slot's first episode in the first ``n_steps`` steps of ``buffer``, flat (see
    :meth:`RolloutBuffer.flat`), each with its episode's advantage: the episode's return minus the mean return of
    the other ``group_size - 1`` episodes of its group (the same instance; the leave-one-out baseline of Kool et
    al., 2019), which needs no critic. A group with an episode still running after ``n_steps`` is left out.

    Raises:
        ValueError: no group finished within ``n_steps`` steps.
    """
    dones = buffer.dones[:n_steps]
    n_envs = dones.shape[1]
    finished = torch.cumsum(dones, dim=0)
    in_first_episode = (finished - dones) == 0  # [T, B]: the step belongs to the slot's first episode
    returns = (buffer.rewards[:n_steps] * in_first_episode).sum(dim=0)  # [B]
    group_finished = (dones.sum(dim=0) > 0).reshape(-1, group_size).all(dim=1)  # [G]
    if not group_finished.any():
        raise ValueError(f"no group of {group_size} episodes finished within n_steps={n_steps} steps; raise n_steps above the longest episode")
    group_returns = returns.reshape(-1, group_size)
    baseline = (group_returns.sum(dim=1, keepdim=True) - group_returns) / (group_size - 1)
    advantage = (group_returns - baseline).reshape(n_envs)
    keep = in_first_episode & group_finished.repeat_interleave(group_size)[None, :]
    return buffer.flat(advantage.expand(n_steps, n_envs), torch.zeros(n_steps, n_envs, device=dones.device), n_steps=n_steps, keep=keep)


def learning_rate_at(config: TrainConfig, steps: int) -> float:
    """The learning rate after ``steps`` decisions: ``config.learning_rate``, or, with ``config.learning_rate_final``,
    the linear interpolation from it (step 0) to the final rate (``config.total_steps`` and after)."""
    if config.learning_rate_final is None:
        return config.learning_rate
    progress = min(1.0, steps / config.total_steps)
    return config.learning_rate + progress * (config.learning_rate_final - config.learning_rate)


def set_learning_rate(optimizer: torch.optim.Optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def _update(
    net: torch.nn.Module, optimizer: torch.optim.Optimizer, rollout: dict, config: TrainConfig, generator: torch.Generator, critic_only: bool = False
) -> dict[str, float]:
    """``config.n_epochs`` passes of clipped-PPO minibatch steps over ``rollout`` (see :meth:`RolloutBuffer.flat`);
    returns the last epoch's mean losses, approximate KL and clip fraction. ``critic_only``: minimize the value loss
    alone, and update only the network's ``critic`` (the shared layers and the actor keep their weights).

    A minibatch runs forward and backward in pieces of at most ``config.chunk_states`` states and takes one
    optimizer step on their summed gradients: the gradient of the whole minibatch, while each piece's tensors stay
    small enough to come from the heap (see :mod:`schedgym.agents.heap`)."""
    net.train()
    value_coef = 0.0 if config.advantage == "group" else config.vf_coef  # group advantages need no critic
    frozen = [p for name, p in net.named_parameters() if not name.startswith("critic.")] if critic_only else []
    n = rollout["actions"].shape[0]
    stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": [], "approx_kl": [], "clip_fraction": []}
    for _ in range(config.n_epochs):
        for values in stats.values():
            values.clear()
        order = torch.randperm(n, generator=generator, device=generator.device)
        for start in range(0, n, config.batch_size):
            index = order[start : start + config.batch_size]
            advantage = rollout["advantages"][index]
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
            optimizer.zero_grad(set_to_none=True)
            sums = dict.fromkeys(stats, 0.0)
            for piece, piece_advantage in zip(index.split(config.chunk_states), advantage.split(config.chunk_states)):
                terms = _loss_terms(net, rollout, piece, piece_advantage, config)
                loss_terms = terms["value_loss"] * value_coef
                if not critic_only:
                    loss_terms = loss_terms + terms["policy_loss"] - config.ent_coef * terms["entropy"]
                (loss_terms.sum() / len(index)).backward()
                for name, values in terms.items():  # tensors: no device sync per piece
                    sums[name] = sums[name] + values.detach().sum()
            for parameter in frozen:  # no gradient: Adam leaves them as they are
                parameter.grad = None
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.max_grad_norm)
            optimizer.step()
            for name, total in sums.items():
                stats[name].append(float(total) / len(index))
    return {name: float(np.mean(values)) for name, values in stats.items()}


def _loss_terms(net: torch.nn.Module, rollout: dict, index: torch.Tensor, advantage: torch.Tensor, config: TrainConfig) -> dict[str, torch.Tensor]:
    """Per decision of ``index`` ``[k]``: the clipped policy loss, the (optionally clipped) value loss, the entropy,
    the approximate KL and whether the ratio was clipped, each ``[k]``; ``advantage`` is already normalized."""
    logits, value = net({key: tensor[index] for key, tensor in rollout["observations"].items()})
    distribution = masked_distribution(logits / config.policy_temperature, rollout["masks"][index])
    log_ratio = distribution.log_prob(rollout["actions"][index]) - rollout["log_probs"][index]
    ratio = log_ratio.exp()
    policy_loss = -torch.min(ratio * advantage, ratio.clamp(1 - config.clip_range, 1 + config.clip_range) * advantage)
    returns, old_value = rollout["returns"][index], rollout["values"][index]
    value_loss = (value - returns).pow(2)
    if config.value_clip_range > 0:
        clipped = old_value + (value - old_value).clamp(-config.value_clip_range, config.value_clip_range)
        value_loss = torch.max(value_loss, (clipped - returns).pow(2))
    with torch.no_grad():
        approx_kl = (ratio - 1) - log_ratio
        clipped_ratio = ((ratio - 1).abs() > config.clip_range).float()
    return {"policy_loss": policy_loss, "value_loss": 0.5 * value_loss, "entropy": distribution.entropy(), "approx_kl": approx_kl, "clip_fraction": clipped_ratio}


def _forward_in_pieces(net: torch.nn.Module, observation: dict[str, torch.Tensor], chunk_states: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``net(observation)`` (logits ``[B, A]``, value ``[B]``), run on at most ``chunk_states`` states at a time."""
    n_states = next(iter(observation.values())).shape[0]
    outputs = [net({key: tensor[start : start + chunk_states] for key, tensor in observation.items()}) for start in range(0, n_states, chunk_states)]
    return torch.cat([logits for logits, _ in outputs]), torch.cat([value for _, value in outputs])


def _cpu_copy(net: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(net).cpu()


def _summary_writer(log_dir: str | Path | None, name: str):
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    run = Path(log_dir) / name
    index = 1
    while (run.parent / f"{run.name}_{index}").exists():
        index += 1
    return SummaryWriter(str(run.parent / f"{run.name}_{index}"))
