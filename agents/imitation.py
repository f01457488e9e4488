"""Behaviour cloning: the warm start of PPO training.

On generated instances, CP-SAT (short time limit) finds near-optimal schedules. A *teacher* then replays each one
in the policy's own env (Giffler-Thompson candidates, forced steps skipped): among the allowed jobs it picks the one whose
next operation starts first in the CP-SAT schedule. The GNN is trained to predict the teacher's choice (cross-entropy
over the masked logits) and the return still to come (value regression), then PPO fine-tunes it.

For socdag the teacher is an online rule (:func:`collect_rule_demonstrations`): its choice (a (task, PE) pair, or
a wait) in every state of generated streams, in the env's ``pair`` mode. Rounds of DAgger (Ross et al. 2011) may
follow: the partly trained network drives fresh streams, the rule labels the states it reaches, and cloning goes
on over all the labels, so the network also learns to recover from its own mistakes. For llmrouting the teacher
is a routing heuristic (:func:`collect_router_demonstrations`, JSQ by pending tokens by default) on generated
workloads. For memmap it is
CP-SAT's map of each generated trace (:func:`collect_placement_demonstrations`), replayed buffer by buffer in the env;
CP-SAT completes any partial map, so it labels the states a network reaches too, and DAgger applies as for socdag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym

import numpy as np
import torch
from torch import nn

from schedgym.agents.rollout import POLICY_ENV_OPTIONS, stack_observations
from schedgym.baselines.jobshop import CpSatJobShop
from schedgym.baselines.llmrouting import ROUTERS
from schedgym.baselines.memmap import CpSatMemMap
from schedgym.baselines.socdag import ONLINE_RULES
from schedgym.envs.jobshop import JobShopEnv, JobShopInstance, JobShopSolution, generate_taillard
from schedgym.envs.llmrouting import LlmRoutingEnv, RoutingGenerator
from schedgym.envs.memmap import SLOW, MemMapInstance, MemMapSolution, MemoryMappingEnv
from schedgym.envs.memmap.tracer import TraceGenerator
from schedgym.envs.socdag import SocDagEnv, StreamGenerator


@dataclass
class Demonstrations:
    """Teacher decisions: ``observations`` (padded to one size, dict of arrays ``[n, ...]``), ``actions`` ``[n]``
    and ``returns`` ``[n]`` (normalized return still to come: -(final makespan - current makespan) / lower bound)."""

    observations: dict[str, np.ndarray]
    actions: np.ndarray
    returns: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


def teacher_rollout(instance: JobShopInstance, expert: JobShopSolution, padding: dict[str, int]) -> tuple[list, list, list]:
    """Replay ``expert`` in the policy env; returns (observations, actions, returns-to-go)."""
    env = JobShopEnv(instance, normalize_reward=True, **padding, **POLICY_ENV_OPTIONS)
    obs, _ = env.reset(seed=0)
    observations, actions, rewards = [], [], []
    terminated = False
    while not terminated:
        allowed = np.flatnonzero(env.action_masks())
        next_ops = env.sim.next_op[allowed]
        expert_start = expert.start_times[allowed, next_ops]
        action = int(allowed[np.argmin(expert_start)])
        observations.append(obs)
        actions.append(action)
        obs, reward, terminated, _, _ = env.step(action)
        rewards.append(reward)
    returns = np.cumsum(rewards[::-1])[::-1]
    return observations, actions, list(returns)


def solve_with_teacher(instances: list[JobShopInstance], time_limit_s: float, seed: int, backend: str = "local") -> list[JobShopSolution]:
    """CP-SAT schedules of ``instances``, each solve a leaderboard job on ``backend`` (``ray``: one instance per
    CPU of the cluster, one CP-SAT worker each; ``local``: one after the other, two CP-SAT workers). Every schedule
    is checked by the validator.

    Raises:
        RuntimeError: if a solve made no valid schedule (the message names the instance and why).
    """
    from schedgym.backends import BACKENDS
    from schedgym.bench import BenchJob

    jobs = [BenchJob(k, "jobshop", "demonstrations", inst, "cpsat", time_limit_s, seed, True) for k, inst in enumerate(instances)]
    solver = CpSatJobShop(num_workers=1 if backend == "ray" else 2)
    rows: dict[str, dict] = {}
    runner = BACKENDS[backend]()
    try:
        runner.run(jobs, {("jobshop", "cpsat"): solver}, lambda row: rows.__setitem__(row["instance"], row))
    finally:
        runner.close()
    bad = [row for row in rows.values() if not row["valid"]]
    if bad:
        raise RuntimeError(f"CP-SAT made no valid schedule for {bad[0]['instance']}: {bad[0].get('error') or bad[0]['metrics'].get('violations')}")
    return [JobShopSolution.from_dict(rows[inst.name]["solution"]) for inst in instances]


def collect_demonstrations(sizes: list[tuple[int, int]], n_instances: int, time_limit_s: float, seed: int, backend: str = "local") -> Demonstrations:
    """Generate ``n_instances`` instances (sizes cycled, one seeded stream), solve them with CP-SAT on ``backend``
    (:func:`solve_with_teacher`) and record the teacher's decisions."""
    rng = np.random.default_rng(seed)
    padding = {"max_jobs": max(j for j, _ in sizes), "max_ops": max(m for _, m in sizes), "max_machines": max(m for _, m in sizes)}
    instances = [generate_taillard(*sizes[k % len(sizes)], rng, name=f"demo-{k}") for k in range(n_instances)]
    started = time.perf_counter()
    experts = solve_with_teacher(instances, time_limit_s, seed, backend)
    print(f"[demonstrations] {n_instances} instances solved by CP-SAT in {time.perf_counter() - started:.0f} s ({backend})", flush=True)
    observations, actions, returns = [], [], []
    for instance, expert in zip(instances, experts):
        obs, act, ret = teacher_rollout(instance, expert, padding)
        observations += obs
        actions += act
        returns += ret
    stacked = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return Demonstrations(stacked, np.array(actions), np.array(returns, dtype=np.float32))


def record_teacher(
    make_env: Callable[[], gym.Env],
    n_episodes: int,
    seed: int,
    teacher: Callable[[gym.Env, np.random.Generator], int],
    actor: Callable[[list[dict[str, np.ndarray]]], list[int]] | None = None,
    parallel: int = 16,
) -> Demonstrations:
    """Run ``teacher`` (env, rng) -> action for ``n_episodes`` episodes of envs made by ``make_env`` (episode ``k``
    reset with seed ``seed + k`` and given its own rng seeded alike) and record its decisions with the returns still
    to come. With an ``actor`` (a list of observations -> their actions), the actor's actions are the ones taken and
    the teacher's are only recorded; up to ``parallel`` episodes then run side by side, so the actor decides for all
    of them in one batched call. The records are in episode order, whatever ``parallel`` is (a batched forward pass
    can round a near-tie between two logits the other way, so the actor's path may differ in rare steps)."""
    envs = [make_env() for _ in range(min(parallel, n_episodes) if actor is not None else 1)]
    records: list[tuple[list, list, list]] = []  # per episode: observations, teacher actions, rewards
    running: dict[int, tuple[int, dict, np.random.Generator]] = {}  # env slot -> (episode, observation, rng)

    def start(slot: int) -> None:
        if len(records) < n_episodes:
            episode = len(records)
            obs, _ = envs[slot].reset(seed=seed + episode)
            records.append(([], [], []))
            running[slot] = (episode, obs, np.random.default_rng(seed + episode))

    for slot in range(len(envs)):
        start(slot)
    while running:
        slots = list(running)
        labels = [teacher(envs[slot], running[slot][2]) for slot in slots]
        taken = labels if actor is None else actor([running[slot][1] for slot in slots])
        for slot, label, action in zip(slots, labels, taken):
            episode, obs, rng = running[slot]
            observations, actions, rewards = records[episode]
            observations.append(obs)
            actions.append(label)
            obs, reward, terminated, _, _ = envs[slot].step(action)
            rewards.append(reward)
            running[slot] = (episode, obs, rng)
            if terminated:
                del running[slot]
                start(slot)
    observations = [obs for episode in records for obs in episode[0]]
    stacked = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    actions = np.array([a for episode in records for a in episode[1]])
    returns = np.concatenate([np.cumsum(episode[2][::-1])[::-1] for episode in records]).astype(np.float32)
    return Demonstrations(stacked, actions, returns)


def collect_rule_demonstrations(
    streams: StreamGenerator,
    n_streams: int,
    seed: int,
    rule: str = "heft-online",
    binding: str = "early",
    student: nn.Module | None = None,
    parallel: int = 16,
) -> Demonstrations:
    """Run the online ``rule`` on ``n_streams`` generated socdag streams in the ``pair``-mode env of ``binding``
    (a late-binding rule such as ``srpt`` needs ``binding="late"``). With a ``student`` network, the student's
    greedy choices drive the streams, ``parallel`` at a time, and the rule only labels the states the student
    reaches (DAgger)."""
    choose, _, queue_capacity = ONLINE_RULES[rule]

    def make_env() -> SocDagEnv:
        return SocDagEnv(streams, mode="pair", binding=binding)

    env_capacity = make_env().queue_capacity
    if queue_capacity != env_capacity:
        raise ValueError(f"rule {rule!r} runs with PE queues of {queue_capacity}, the {binding}-binding env has {env_capacity}; pick the other binding")
    ranks: dict = {}  # upward ranks of the streams running, by instance

    def teacher(env: SocDagEnv, rng: np.random.Generator) -> int:
        instance = env.sim.instance
        if instance not in ranks:
            ranks[instance] = instance.upward_rank()
        move = choose(env.sim, ranks[instance], rng)
        if move is None:
            return env.wait_action
        task, pe = move
        return env.window_slot(task) * env.encoder.max_pes + pe

    return record_teacher(make_env, n_streams, seed, teacher, None if student is None else greedy_actor(student), parallel)


def greedy_actor(net: nn.Module) -> Callable[[list[dict[str, np.ndarray]]], list[int]]:
    """observations -> the legal action of highest logit under ``net`` for each, in one batched forward pass
    (evaluation mode, no gradients)."""

    def act(observations: list[dict[str, np.ndarray]]) -> list[int]:
        net.eval()
        with torch.no_grad():
            batch = stack_observations(observations)
            logits, _ = net(batch)
        return logits.masked_fill(batch["action_mask"] == 0, float("-inf")).argmax(-1).tolist()

    return act


def collect_router_demonstrations(generator: RoutingGenerator, n_workloads: int, seed: int, router: str = "jsq-tokens") -> Demonstrations:
    """Run the routing heuristic ``router`` on ``n_workloads`` generated llmrouting workloads."""
    choose = ROUTERS[router][0]
    return record_teacher(lambda: LlmRoutingEnv(generator), n_workloads, seed, lambda env, rng: choose(env.sim, env.request, rng))


def collect_placement_demonstrations(
    generator: TraceGenerator, n_traces: int, seed: int, time_limit_s: float, student: nn.Module | None = None, parallel: int = 16
) -> Demonstrations:
    """CP-SAT maps (``time_limit_s`` each, 2 workers) of ``n_traces`` generated traces, replayed in the env: a buffer
    CP-SAT leaves slow goes slow; a fast one goes to the candidate at CP-SAT's offset, else to the nearest candidate
    (slow if none is left). Whenever the map so far leaves CP-SAT's map (a nearest candidate taken, or a
    ``student`` network's own choice), CP-SAT maps the rest of the trace again with the decided buffers pinned, so
    every label is CP-SAT's best completion of the state it is given. With a ``student``, the student's greedy
    choices drive the traces, ``parallel`` at a time, and CP-SAT only labels the states it reaches (DAgger)."""
    solver = CpSatMemMap()
    plans: dict[int, tuple[MemMapInstance, np.ndarray]] = {}  # env -> (its trace, CP-SAT's map of it so far)
    solves = 0

    def teacher(env: MemoryMappingEnv, rng: np.random.Generator) -> int:
        nonlocal solves
        instance, plan = plans.get(id(env), (None, None))
        decided = np.asarray(env.order[: env.step_index], dtype=np.int64)
        placed = env.placement.offset
        if instance is not env.instance or np.any(plan[decided] != placed[decided]):
            fixed = {int(b): int(placed[b]) for b in decided}
            hint = MemMapSolution(plan) if instance is env.instance else None  # keeps the rest of the plan where it can
            plan = solver.solve(env.instance, time_limit=time_limit_s, seed=seed, fixed=fixed, hint=hint).offset
            plans[id(env)] = (env.instance, plan)
            solves += 1
        target = int(plan[env.order[env.step_index]])
        offsets = [offset for offset, _ in env.current_candidates]
        if target == SLOW or not offsets:
            return 0
        return 1 + min(range(len(offsets)), key=lambda k: abs(offsets[k] - target))

    started = time.perf_counter()
    demos = record_teacher(lambda: MemoryMappingEnv(generator), n_traces, seed, teacher, None if student is None else greedy_actor(student), parallel)
    driver = "the student" if student is not None else "CP-SAT"
    print(f"[demonstrations] {n_traces} traces driven by {driver}, {solves} CP-SAT solves, {time.perf_counter() - started:.0f} s", flush=True)
    return demos


def behaviour_cloning(
    net: nn.Module, demos: Demonstrations, *, epochs: int, batch_size: int, learning_rate: float, seed: int, device: str = "cpu"
) -> list[float]:
    """Fit ``net``'s logits to the teacher's actions and its value to the returns (Adam, learning rate decayed to
    zero along a cosine) on ``device`` (``cpu`` or ``cuda``; the network is back on the CPU afterwards); returns
    the training accuracy per epoch.

    Raises:
        ValueError: if ``device`` is ``cuda`` and this machine has no usable CUDA GPU.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"behaviour cloning on {device!r} needs a CUDA GPU and this machine has none; set bc_device to 'cpu'")
    generator = torch.Generator().manual_seed(seed)
    net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    steps_per_epoch = -(-len(demos) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    actions = torch.from_numpy(demos.actions).to(device)
    returns = torch.from_numpy(demos.returns).to(device)
    accuracy_per_epoch = []
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(demos), generator=generator)
        correct, loss_sum = 0, 0.0
        for begin in range(0, len(demos), batch_size):
            index = order[begin : begin + batch_size].numpy()
            batch = {key: torch.from_numpy(value[index]).to(device) for key, value in demos.observations.items()}
            logits, values = net(batch)
            logits = logits.masked_fill(batch["action_mask"] == 0, float("-inf"))
            policy_loss = nn.functional.cross_entropy(logits, actions[index])
            value_loss = nn.functional.mse_loss(values, returns[index])
            loss = policy_loss + 0.5 * value_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(-1) == actions[index]).sum())
            loss_sum += float(policy_loss.detach()) * len(index)
        accuracy_per_epoch.append(correct / len(demos))
        print(f"[behaviour cloning] epoch {epoch + 1}/{epochs}: accuracy {correct / len(demos):.3f}, policy loss {loss_sum / len(demos):.4f}", flush=True)
    net.to("cpu")
    return accuracy_per_epoch


def save_demonstrations(demos: Demonstrations, path: str) -> None:
    np.savez_compressed(path, actions=demos.actions, returns=demos.returns, **{f"obs_{k}": v for k, v in demos.observations.items()})


def load_demonstrations(path: str) -> Demonstrations:
    data = np.load(path)
    observations = {key[4:]: data[key] for key in data.files if key.startswith("obs_")}
    return Demonstrations(observations, data["actions"], data["returns"])


def concatenate(parts: list[Demonstrations]) -> Demonstrations:
    """One set of demonstrations from several (padded to the same size)."""
    keys = parts[0].observations
    return Demonstrations(
        {key: np.concatenate([p.observations[key] for p in parts]) for key in keys},
        np.concatenate([p.actions for p in parts]),
        np.concatenate([p.returns for p in parts]),
    )
