"""PPO training throughput: today's MaskablePPO recipe, MaskablePPO over the batched engine, and the batched
trainer (:mod:`schedgym.agents.ppo`), side by side in one run.

    python benchmarks/ppo_speed.py --problem jobshop --steps 4096 --device cpu
    python benchmarks/ppo_speed.py --problem socdag   # likewise llmrouting, memmap

Every configuration trains the same network (the shipped GnnConfig) from scratch with no warm start, on the
recipe's training workload (jobshop: generated 15x15 instances, ta01's size), in a fresh process (so that peak RSS
is its own); env steps (decisions) per second of wall time count rollouts and gradient steps (and a one-instance
validation at the start and end). Results go to ``results/ppo_speed.json`` (jobshop) or
``results/ppo_speed_<problem>.json``.
``recipe`` rows use the shipped recipe's PPO settings (16 envs x 128 steps, minibatch 512, 4 epochs); the
``throughput`` row is the batched trainer with 256 slots x 16 steps, minibatch 1024 and 1 epoch, its forward and
backward passes in pieces of ``chunk_states`` (64) states; the row before it runs each minibatch in one pass. The
batched trainer also reports where its time went (env, rollout forward, update). ``--sizes`` (jobshop) trains on
other instance sizes, e.g. the recipe's ``10x10,15x10,15x15,20x15,20x20``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from schedgym.atomic import atomic_write_text

CONFIGURATIONS = {
    "MaskablePPO, Gymnasium envs (recipe)": ("sb3", {}),
    "MaskablePPO, BatchedVecEnv (recipe)": ("sb3-batched", {}),
    "batched trainer (recipe)": ("batched", {}),
    "batched trainer (throughput, one pass per minibatch)": ("batched", {"n_envs": 256, "n_steps": 16, "batch_size": 1024, "n_epochs": 1, "chunk_states": 1024}),
    "batched trainer (throughput)": ("batched", {"n_envs": 256, "n_steps": 16, "batch_size": 1024, "n_epochs": 1}),
}


def _config(problem: str, steps: int, device: str, overrides: dict, sizes: str = "15x15"):
    from schedgym.agents.train import TrainConfig

    base = replace(
        TrainConfig.for_problem(problem), total_steps=steps, bc_instances=0, dagger_rounds=0, eval_every_steps=10**9,
        checkpoint_every_steps=10**9, val_sizes="6x6", val_instances_per_size=1, device=device,
    )
    if problem == "jobshop":
        base = replace(base, sizes=sizes)
    return replace(base, **overrides)


def _run(problem: str, kind: str, steps: int, device: str, overrides: dict, sizes: str, results) -> None:
    from sb3_contrib import MaskablePPO

    from schedgym.agents.policy import GnnMaskablePolicy
    from schedgym.agents.ppo import train_batched
    from schedgym.agents.recipes import RECIPES
    from schedgym.agents.train import train
    from schedgym.envs.vector import BatchedVecEnv

    config = _config(problem, steps, device, overrides, sizes)
    torch.set_num_threads(config.torch_threads)
    row: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        if kind == "sb3":
            train(config, Path(folder) / "p.zip", log_dir=None, progress_bar=False)
        elif kind == "sb3-batched":
            env = BatchedVecEnv(RECIPES[problem].make_batched_env(config))
            model = MaskablePPO(
                GnnMaskablePolicy, env, n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.n_epochs,
                learning_rate=config.learning_rate, gamma=config.gamma, gae_lambda=config.gae_lambda, seed=config.seed,
                device=device, policy_kwargs={"gnn": config.gnn.to_dict(), "problem": problem, "mode": config.mode, "binding": config.binding},
            )
            model.learn(steps)
        else:
            from schedgym.agents.checkpoint import read_metadata

            out = train_batched(replace(config, trainer="batched"), Path(folder) / "p.zip", log_dir=None)
            row["time_split_s"] = read_metadata(out.with_name("p.last.zip")).figures["train_time_split_s"]
        elapsed = time.perf_counter() - started
    row.update(env_steps_per_s=steps / elapsed, wall_s=elapsed, peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results.put(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", choices=("jobshop", "socdag", "llmrouting", "memmap"), default="jobshop")
    parser.add_argument("--steps", type=int, default=4096, help="decisions per configuration")
    parser.add_argument("--device", default="cpu", help="where the batched trainer's network runs (cpu or cuda)")
    parser.add_argument("--sizes", default="15x15", help="jobshop: training instance sizes")
    parser.add_argument("--out", help="default: results/ppo_speed.json (jobshop), results/ppo_speed_<problem>.json")
    args = parser.parse_args()
    file_name = "ppo_speed.json" if args.problem == "jobshop" else f"ppo_speed_{args.problem}.json"
    out = Path(args.out or Path(__file__).parent / "results" / file_name)
    context = multiprocessing.get_context("spawn")
    rows = []
    for name, (kind, overrides) in CONFIGURATIONS.items():
        results = context.Queue()
        process = context.Process(target=_run, args=(args.problem, kind, args.steps, args.device, overrides, args.sizes, results))
        process.start()
        row = results.get()
        process.join()
        rows.append({"configuration": name, **asdict(_config(args.problem, args.steps, args.device, overrides, args.sizes)), **row})
        print(f"{name:40s} {row['env_steps_per_s']:8.0f} env steps/s  peak RSS {row['peak_rss_mib']:.0f} MiB  {row.get('time_split_s', '')}", flush=True)
    reference = rows[0]["env_steps_per_s"]
    for row in rows:
        row["x_recipe"] = row["env_steps_per_s"] / reference
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__, "problem": args.problem, "device": args.device, "steps": args.steps}
    atomic_write_text(out, json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
