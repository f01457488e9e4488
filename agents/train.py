"""Train a GNN dispatching policy with sb3-contrib's MaskablePPO: the whole recipe, top to bottom.

    schedgym train jobshop --sizes 10x10,15x10,15x15,20x15,20x20 --steps 40000 --out policies/jobshop.zip

Instances are generated (Taillard-style), never taken from a benchmark. Training starts with behaviour cloning of
CP-SAT schedules on generated instances (:mod:`schedgym.agents.imitation`), then MaskablePPO improves the policy
on freshly generated instances (one per episode). Every ``eval_every_steps``
the greedy policy schedules a fixed set of generated validation instances; the mean gap to the best dispatching
rule on each is logged to TensorBoard, and the best policy so far is written to ``--out``. Periodic checkpoints
(``<out>_checkpoints/``) and the last state (``<out stem>.last.zip``) can be resumed with ``--resume`` without
losing optimizer state or the step count.

The same loop trains every problem's policy; what differs per problem (training env, validation set, reference
rules, warm-start teacher, the shipped recipe's settings) is in :mod:`schedgym.agents.recipes`.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env

from schedgym.agents.checkpoint import PolicyMetadata, add_metadata, read_metadata, resolve_policy_path
from schedgym.agents.gnn import GnnConfig
from schedgym.agents.heap import keep_freed_heap_memory
from schedgym.agents.imitation import behaviour_cloning, concatenate, load_demonstrations, save_demonstrations
from schedgym.agents.policy import GnnMaskablePolicy
from schedgym.agents.recipes import RECIPES
from schedgym.agents.rollout import policy_objective, run_policy
from schedgym.envs.memmap.tracer import TraceGenerator


@dataclass
class TrainConfig:
    """Every hyper-parameter of a training run; saved inside the checkpoint."""

    problem: str = "jobshop"  # jobshop, jobshop-improve (the move selector of local search), jobshop-blocking, socdag, llmrouting or memmap
    sizes: str = "10x10,15x10,15x15,20x15,20x20"  # training instance sizes, drawn uniformly per episode
    total_steps: int = 40_000  # PPO decisions (env steps) in total; the shipped policy is the best validation (20k)
    n_envs: int = 16  # envs stepped in lockstep (one batched forward per step)
    n_steps: int = 128  # steps per env per rollout
    batch_size: int = 512  # minibatch of decisions per gradient step (PPO and behaviour cloning)
    n_epochs: int = 4  # passes over each rollout
    learning_rate: float = 2e-5  # PPO fine-tuning after the warm start: small steps (1e-4 undid the warm start)
    gamma: float = 1.0  # undiscounted: the return is minus the (normalized) makespan
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    seed: int = 0
    eval_every_steps: int = 20_000  # validation period
    checkpoint_every_steps: int = 50_000  # periodic checkpoint period
    val_sizes: str = "15x15,20x20"  # validation instance sizes
    val_instances_per_size: int = 5
    val_seed: int = 12345  # validation instances are generated from this seed (fixed across runs)
    torch_threads: int = 2
    bc_instances: int = 480  # warm start: generated instances solved by CP-SAT (socdag: streams run by the socdag_teacher rule; llmrouting: workloads routed by JSQ-tokens; memmap: traces mapped by CP-SAT) and imitated (0: pure PPO)
    bc_sizes: str = "10x10,15x10,15x15,20x15,20x20"
    bc_time_limit_s: float = 2.5  # CP-SAT time per demonstration instance (jobshop, memmap)
    bc_epochs: int = 10
    bc_learning_rate: float = 1e-3
    bc_seed: int = 1
    dagger_rounds: int = 0  # after cloning: rounds of DAgger, each labelling bc_instances fresh episodes driven by the network (socdag, memmap)
    dagger_epochs: int = 3  # cloning epochs over all the labels after each DAgger round
    dagger_parallel: int = 16  # DAgger: episodes the network drives side by side, one batched forward pass for all
    bc_device: str = "cpu"  # where behaviour cloning runs: cpu or cuda (PPO always runs on the CPU)
    mode: str = "order"  # socdag action mode: order (pick the task, PE by earliest finish) or pair
    binding: str = "early"  # socdag binding: early (PE queues of 8 tasks) or late (a PE holds one task; the policy may wait)
    socdag_teacher: str = "heft-online"  # socdag: the online rule imitated by the warm start
    stream_rate_per_ms: str = "40,90"  # socdag: range of job arrival rates of the training streams
    stream_noise: str = "0,0.3"  # socdag: range of the run-time noise (relative std)
    stream_jobs: int = 60  # socdag: jobs per training stream
    routing_prompt_scales: str = "1,2,4,8"  # llmrouting: prompt-length multipliers of the training workloads, comma-separated
    routing_clusters: str = ""  # llmrouting: clusters of the training workloads, comma-separated (schedgym.envs.llmrouting.suites.CLUSTERS; an empty name is the default Llama-1B H100 one), e.g. ",kv,hetero"
    trace_families: str = ",".join(TraceGenerator.families)  # memmap: model families of the training traces (the others stay held out)
    blocking_shutdown_rates: str = "0,0.05,0.1"  # jobshop-blocking: shutdown rates of the training episodes (one drawn per episode) and, in turn, of the validation instances
    improve_horizon: int = 500  # jobshop-improve: moves per training and validation episode
    improve_starts: str = "fdd-mwkr,mwkr,spt,random"  # jobshop-improve: the rules whose schedules training episodes start from (one drawn per episode)
    trainer: str = "sb3"  # sb3: MaskablePPO over Gymnasium envs; batched: schedgym.agents.ppo over the problem's batched engine
    device: str = "cpu"  # where PPO's network runs (batched trainer): cpu or cuda; the engine stays on the CPU
    value_clip_range: float = 0.0  # batched trainer: clip the value update to this range around the old value (0: off)
    learning_rate_final: float | None = None  # batched trainer: anneal the learning rate linearly from learning_rate at step 0 to this at total_steps (None: constant)
    chunk_states: int = 64  # batched trainer: states per forward (and backward) pass; a minibatch sums the gradients of its pieces (tensors above 32 MiB are page-faulted in at every pass, see schedgym.agents.heap)
    critic_warmup_steps: int = 0  # batched trainer: for this many first decisions only the critic learns (a warm-started policy is not moved by an untrained critic's advantages)
    advantage: str = "gae"  # batched trainer: gae (a critic, GAE over n_steps per slot) or group (whole episodes, group_size of them on each instance; an episode's advantage is its return minus the mean of the others', no critic; n_steps caps the episode)
    group_size: int = 8  # batched trainer, advantage=group: episodes sampled on each instance (n_envs / group_size instances per rollout)
    policy_temperature: float = 1.0  # batched trainer: PPO samples and trains softmax(logits / T); T < 1 keeps the rollouts near the greedy policy that is validated and shipped
    gnn: GnnConfig = field(default_factory=GnnConfig)

    @classmethod
    def for_problem(cls, problem: str) -> "TrainConfig":
        """The recipe of the shipped policy of ``problem`` (its settings are in :data:`schedgym.agents.recipes.RECIPES`)."""
        if problem not in RECIPES:
            raise ValueError(f"no training recipe for problem {problem!r}; policies exist for {', '.join(RECIPES)}")
        return cls(problem=problem, **RECIPES[problem].settings)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["gnn"] = GnnConfig(**data.get("gnn", {}))
        return cls(**data)


def best_rule_objectives(problem: str, instances: list) -> np.ndarray:
    """Per instance, the best objective of the problem's reference rules (see :class:`schedgym.agents.recipes.Recipe`)."""
    rules = RECIPES[problem].reference_rules()
    return np.array([min(policy_objective(problem, inst, rule.solve(inst)) for rule in rules) for inst in instances], dtype=float)


class Validation:
    """The fixed validation set of a run: greedy objectives, mean gap to the best reference rule per instance,
    the history of every evaluation and the best gap so far."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.instances = RECIPES[config.problem].validation_instances(config)
        self.reference = best_rule_objectives(config.problem, self.instances)
        self.best_gap = float("inf")
        self.history: list[dict] = []

    def evaluate(self, net: torch.nn.Module, steps: int) -> tuple[float, float, bool]:
        """``(gap %, mean objective, whether the gap is the best so far)`` of ``net`` (greedy) after ``steps``."""
        was_training = net.training
        net.eval()
        solutions = run_policy(net, self.instances, greedy=True, problem=self.config.problem)
        net.train(was_training)
        values = np.array([policy_objective(self.config.problem, inst, s) for s, inst in zip(solutions, self.instances)], dtype=float)
        gap = float(np.mean(100.0 * (values - self.reference) / self.reference))
        self.history.append({"steps": int(steps), "gap_vs_best_rule_pct": gap})
        print(f"[validation] steps {steps}: gap to best rule {gap:+.2f}%", flush=True)
        improved = gap < self.best_gap
        self.best_gap = min(self.best_gap, gap)
        return gap, float(values.mean()), improved


class ValidationCallback(BaseCallback):
    """Every ``config.eval_every_steps``: :class:`Validation` of the greedy policy, logged as
    ``val/gap_vs_best_rule_pct``; the best policy so far is saved to ``out`` with its metadata."""

    def __init__(self, config: TrainConfig, out: Path, where_trained: str) -> None:
        super().__init__()
        self.config = config
        self.out = out
        self.where_trained = where_trained
        self.validation = Validation(config)
        self.last_eval = -1

    @property
    def best_gap(self) -> float:
        return self.validation.best_gap

    @property
    def history(self) -> list[dict]:
        return self.validation.history

    def _on_step(self) -> bool:
        if self.last_eval < 0 or self.num_timesteps - self.last_eval >= self.config.eval_every_steps:
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if self.last_eval != self.num_timesteps:
            self.evaluate()

    def evaluate(self) -> float:
        self.last_eval = self.num_timesteps
        gap, mean_objective, improved = self.validation.evaluate(self.model.policy.net, self.num_timesteps)
        self.logger.record("val/gap_vs_best_rule_pct", gap)
        self.logger.record("val/mean_objective", mean_objective)
        if improved:
            save_with_metadata(self.model, self.out, self.config, self.where_trained, {"val_gap_vs_best_rule_pct": gap, "val_history": self.history})
        return gap


def save_with_metadata(model: MaskablePPO, path: Path, config: TrainConfig, where_trained: str, figures: dict) -> None:
    """Save ``model`` to ``path`` (written beside it, then renamed) with the schedgym metadata entry."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.saving.zip")
    model.save(tmp)
    add_metadata(
        tmp,
        PolicyMetadata(
            problem=config.problem,
            gnn=config.gnn.to_dict(),
            train=asdict(config),
            num_timesteps=int(model.num_timesteps),
            where_trained=where_trained,
            figures=figures,
        ),
    )
    tmp.replace(path)


def warm_start(model: MaskablePPO, config: TrainConfig, demos_cache: str | Path | None, backend: str = "local") -> dict:
    """Behaviour cloning of the problem's teacher (see :mod:`schedgym.agents.imitation`) before PPO.

    ``demos_cache``: an ``.npz`` of demonstrations to reuse if it exists, else where to save the ones collected.
    ``backend``: where the jobshop CP-SAT teacher solves run (``ray``: fanned out, see :mod:`schedgym.backends`).

    Raises:
        ValueError: if ``config.dagger_rounds`` is set for a problem whose teacher cannot label any state.
    """
    recipe = RECIPES[config.problem]
    if config.dagger_rounds and recipe.student_demonstrations is None:
        raise ValueError(f"dagger_rounds needs a teacher that can label any state; the {config.problem} teacher cannot (set dagger_rounds to 0)")
    if demos_cache is not None and Path(demos_cache).exists():
        demos = load_demonstrations(str(demos_cache))
    else:
        demos = recipe.demonstrations(config, backend)
        if demos_cache is not None:
            save_demonstrations(demos, str(demos_cache))
    net = model.policy.net
    clone = dict(batch_size=config.batch_size, learning_rate=config.bc_learning_rate, seed=config.seed, device=config.bc_device)
    accuracy = behaviour_cloning(net, demos, epochs=config.bc_epochs, **clone)
    for round_index in range(config.dagger_rounds):
        demos = concatenate([demos, recipe.student_demonstrations(config, net, round_index)])
        print(f"[dagger] round {round_index + 1}/{config.dagger_rounds}: {len(demos)} labelled decisions", flush=True)
        accuracy += behaviour_cloning(net, demos, epochs=config.dagger_epochs, **clone)
    return {"bc_decisions": len(demos), "bc_accuracy": accuracy}


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    resume: str | Path | None = None,
    log_dir: str | Path | None = "runs",
    progress_bar: bool = True,
    demos_cache: str | Path | None = None,
    backend: str = "local",
) -> Path:
    """Train (or continue training from ``resume``) until ``config.total_steps`` decisions; returns ``out``.
    ``backend``: where the warm start's CP-SAT teacher solves run (``local`` or ``ray``).

    Raises:
        CheckpointError / FileNotFoundError: if ``resume`` is missing or unreadable.
    """
    if config.problem not in RECIPES:
        raise ValueError(f"no policy for problem {config.problem!r}; train one of {', '.join(RECIPES)}")
    out = Path(out)
    torch.set_num_threads(config.torch_threads)
    keep_freed_heap_memory()
    where = f"{platform.node() or 'host'} ({platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__})"
    env = make_vec_env(lambda: RECIPES[config.problem].make_env(config), n_envs=config.n_envs, seed=config.seed)
    if resume is not None:
        model = MaskablePPO.load(resolve_policy_path(resume), env=env, device="cpu", tensorboard_log=str(log_dir) if log_dir else None)
    else:
        model = MaskablePPO(
            GnnMaskablePolicy,
            env,
            policy_kwargs={"gnn": config.gnn.to_dict(), "problem": config.problem, "mode": config.mode, "binding": config.binding},
            n_steps=config.n_steps,
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            learning_rate=config.learning_rate,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            clip_range=config.clip_range,
            ent_coef=config.ent_coef,
            vf_coef=config.vf_coef,
            max_grad_norm=config.max_grad_norm,
            seed=config.seed,
            device="cpu",
            tensorboard_log=str(log_dir) if log_dir else None,
            verbose=0,
        )
    warm_start_figures = {}
    if resume is None and config.bc_instances > 0:
        warm_start_figures = warm_start(model, config, demos_cache, backend)
    validation = ValidationCallback(config, out, where)
    checkpoints = CheckpointCallback(
        save_freq=max(1, config.checkpoint_every_steps // config.n_envs),
        save_path=str(out.parent / f"{out.stem}_checkpoints"),
        name_prefix=out.stem,
    )
    remaining = max(0, config.total_steps - model.num_timesteps)
    started = time.perf_counter()
    model.learn(
        remaining,
        callback=CallbackList([validation, checkpoints]),
        reset_num_timesteps=resume is None,
        tb_log_name=out.stem,
        progress_bar=progress_bar,
    )
    elapsed = time.perf_counter() - started
    figures = {
        **warm_start_figures,
        "best_val_gap_vs_best_rule_pct": validation.best_gap,
        "val_history": validation.history,
        "train_wall_s": elapsed,
        "train_steps_per_s": remaining / elapsed if elapsed > 0 else None,
    }
    save_with_metadata(model, out.with_name(f"{out.stem}.last.zip"), config, where, figures)
    # refresh the best checkpoint's figures with the whole run's history
    best = read_metadata(out)
    best.figures.update({"val_history": validation.history, "train_wall_s": elapsed, **warm_start_figures})
    add_metadata(out, best)
    print(json.dumps({"out": str(out), **{k: v for k, v in figures.items() if k != "val_history"}}))
    return out
