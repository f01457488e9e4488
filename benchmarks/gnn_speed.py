"""JobShopGnn cost per state: forward (rollout, no gradient) and forward + backward (PPO update), on batches of
generated 15x15 states part-way through their schedules.

    python benchmarks/gnn_speed.py --batch-sizes 64,256 --threads 2

These two figures bound PPO's throughput on a machine: one decision with E update epochs costs about
forward + E * (forward + backward) per state, whatever the trainer (see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from schedgym.agents.gnn import GnnConfig, JobShopGnn
from schedgym.agents.rollout import POLICY_ENV_OPTIONS
from schedgym.atomic import atomic_write_text
from schedgym.envs.jobshop import TaillardGenerator, parse_sizes
from schedgym.envs.jobshop.batched import JobShopBatch


def states(sizes: str, n_states: int, decisions: int) -> dict[str, torch.Tensor]:
    """A batch of ``n_states`` observations, each ``decisions`` random legal decisions into its schedule."""
    batch = JobShopBatch(TaillardGenerator(parse_sizes(sizes)), n_states, seed=0, **POLICY_ENV_OPTIONS)
    observation = batch.reset()
    rng = np.random.default_rng(0)
    for _ in range(decisions):
        masks = batch.action_masks()
        observation, *_ = batch.step((rng.random(masks.shape) * masks).argmax(1))
    return {key: torch.from_numpy(value.copy()) for key, value in observation.items()}


def per_state_us(run, n_states: int, repeats: int) -> float:
    run()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - started) / repeats / n_states * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="15x15")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gnn_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = JobShopGnn(GnnConfig())
    rows = []
    for n_states in (int(b) for b in args.batch_sizes.split(",")):
        obs = states(args.sizes, n_states, decisions=60)

        def forward() -> None:
            with torch.no_grad():
                net(obs)

        def forward_backward() -> None:
            logits, value = net(obs)
            (logits.sum() + value.sum()).backward()

        row = {
            "batch_size": n_states,
            "forward_us_per_state": per_state_us(forward, n_states, args.repeats),
            "forward_backward_us_per_state": per_state_us(forward_backward, n_states, args.repeats),
        }
        rows.append(row)
        print(f"B={n_states:4d}  forward {row['forward_us_per_state']:7.0f} us/state  forward+backward {row['forward_backward_us_per_state']:7.0f} us/state")
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__, "sizes": args.sizes}
    atomic_write_text(Path(args.out), json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
