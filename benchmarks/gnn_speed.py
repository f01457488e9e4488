"""JobShopGnn cost per state: forward (rollout, no gradient) and forward + backward (PPO update), on batches of
generated 15x15 states part-way through their schedules.

    python benchmarks/gnn_speed.py --batch-sizes 64,256 --threads 2 [--reference CHECKOUT] [--repeats 3]

These two figures bound PPO's throughput on a machine: one decision with E update epochs costs about
forward + E * (forward + backward) per state, whatever the trainer (see docs/training.md). Each measurement runs in
a fresh process with the trainer's heap settings; with ``--reference`` (another checkout of this repository, e.g.
``git worktree add /tmp/ref <commit>``) the same measurements of that checkout's network run in turns with this
one's, the best of ``--repeats`` kept for each, and the outputs of both networks on the same states are compared.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from reference_checkout import measure_in_turns, package_view, write_results

MEASURE = r"""
import hashlib, json, sys, time
import numpy as np
import torch
from schedgym.agents.gnn import GnnConfig, JobShopGnn
from schedgym.agents.heap import keep_freed_heap_memory
from schedgym.agents.rollout import POLICY_ENV_OPTIONS
from schedgym.envs.jobshop import TaillardGenerator, parse_sizes
from schedgym.envs.jobshop.batched import JobShopBatch

sizes, n_states, threads, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
keep_freed_heap_memory()
torch.set_num_threads(threads)
batch = JobShopBatch(TaillardGenerator(parse_sizes(sizes)), n_states, seed=0, **POLICY_ENV_OPTIONS)
observation = batch.reset()
rng = np.random.default_rng(0)
for _ in range(60):  # states 60 random legal decisions into their schedules
    masks = batch.action_masks()
    observation, *_ = batch.step((rng.random(masks.shape) * masks).argmax(1))
obs = {key: torch.from_numpy(value.copy()) for key, value in observation.items()}
torch.manual_seed(0)
net = JobShopGnn(GnnConfig())

def forward():
    with torch.no_grad():
        return net(obs)

def forward_backward():
    logits, value = net(obs)
    (logits.sum() + value.sum()).backward()

def per_state_us(run):
    run()
    started = time.perf_counter()
    for _ in range(passes):
        run()
    return (time.perf_counter() - started) / passes / n_states * 1e6

logits, value = forward()
digest = hashlib.sha256(np.round(torch.cat([logits.flatten(), value]).numpy(), 4).tobytes()).hexdigest()[:16]
print(json.dumps({"forward_us_per_state": per_state_us(forward), "forward_backward_us_per_state": per_state_us(forward_backward), "digest": digest}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="15x15")
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", type=int, default=5, help="timed passes per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per checkout and batch size (best kept)")
    parser.add_argument("--reference", type=Path, help="another checkout of this repository to time side by side")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gnn_speed.json")
    args = parser.parse_args()
    codes: dict = {"ours": None}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if args.reference:
            codes["reference"] = package_view(args.reference, Path(folder))
        for n_states in (int(b) for b in args.batch_sizes.split(",")):
            runs = measure_in_turns(MEASURE, [args.sizes, str(n_states), str(args.threads), str(args.passes)], codes, args.repeats)
            row: dict = {"sizes": args.sizes, "threads": args.threads, "batch_size": n_states}
            for code, results in runs.items():
                for figure in ("forward_us_per_state", "forward_backward_us_per_state"):
                    row[f"{code}_{figure}"] = min(result[figure] for result in results)
                row[f"{code}_digest"] = results[0]["digest"]
            line = f"B={n_states:4d}  forward {row['ours_forward_us_per_state']:7.0f} us/state  forward+backward {row['ours_forward_backward_us_per_state']:7.0f} us/state"
            if args.reference:
                same = "same" if row["ours_digest"] == row["reference_digest"] else "DIFFERENT"
                line += (f"  (reference {row['reference_forward_us_per_state']:.0f} / {row['reference_forward_backward_us_per_state']:.0f};"
                         f" {row['reference_forward_us_per_state'] / row['ours_forward_us_per_state']:.2f}x /"
                         f" {row['reference_forward_backward_us_per_state'] / row['ours_forward_backward_us_per_state']:.2f}x; {same} outputs)")
            print(line, flush=True)
            rows.append(row)
    write_results(args.out, rows, args.repeats, args.reference)


if __name__ == "__main__":
    main()
