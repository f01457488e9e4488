"""Speed of the memmap env and of the placer's batched rollouts, ours against an older checkout side by side.

    python benchmarks/memmap_rollout_speed.py [--reference CHECKOUT] [--repeats 3]

Two workloads on each transformer trace of ``traced-models``, best of ``--repeats``, each in a fresh process:

* ``env``: ``MemoryMappingEnv`` steps/s with uniformly random legal actions (observation included), 200 episodes;
* ``descent``: the shipped placer's greedy rollout, then one batch of 32 rollouts that replay its first t decisions
  (t spread evenly over the episode) and take the network's second-ranked action at decision t, as a
  ``ppo-sample`` descent step does (one thread); rollouts/s.

With ``--reference`` (another checkout of this repository, e.g. ``git worktree add /tmp/ref <commit>``) the same runs
use that checkout's code in turns with ours; the digest of every action taken shows that both run the same episodes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from reference_checkout import measure_in_turns, package_view, write_results
from schedgym.envs.memmap.suites import resolve_suite

MEASURE = """
import hashlib, json, sys, time
import numpy as np, torch
from schedgym.agents.rollout import run_rollouts
from schedgym.envs.memmap import MemoryMappingEnv
from schedgym.envs.memmap.suites import resolve_suite
from schedgym.registry import make_solver
instance = resolve_suite(sys.argv[1])[0]
digest = hashlib.sha256()
if sys.argv[2] == "env":
    env, rng, steps = MemoryMappingEnv(instance), np.random.default_rng(0), 0
    started = time.perf_counter()
    for episode in range(200):
        env.reset(seed=episode)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(env.action_masks())))
            digest.update(bytes([action]))
            done = env.step(action)[2]
            steps += 1
    print(json.dumps({"wall_s": time.perf_counter() - started, "count": steps, "digest": digest.hexdigest()[:16]}))
else:
    torch.set_num_threads(1)
    net = make_solver("memmap", "ppo").net
    greedy = run_rollouts(net, [instance], problem="memmap")[0]
    cuts = np.linspace(0, len(greedy.actions) - 1, 32).astype(int).tolist()
    started = time.perf_counter()
    rollouts = run_rollouts(net, [instance] * 32, problem="memmap", prefixes=[greedy.actions[:t] for t in cuts], runner_up_at=[{t} for t in cuts])
    wall_s = time.perf_counter() - started
    for rollout in rollouts:
        digest.update(bytes(rollout.actions))
    print(json.dumps({"wall_s": wall_s, "count": len(rollouts), "digest": digest.hexdigest()[:16]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="another checkout of this repository to time side by side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "memmap_rollout_speed.json")
    args = parser.parse_args()
    traces = [inst.name for inst in resolve_suite("traced-models") if inst.name.startswith("transformer-")]
    codes = {"ours": None}
    with tempfile.TemporaryDirectory() as folder:
        if args.reference:
            codes["reference"] = package_view(args.reference, Path(folder))
        rows = []
        for trace in traces:
            for workload, unit in (("env", "steps/s"), ("descent", "rollouts/s")):
                runs = measure_in_turns(MEASURE, [trace, workload], codes, args.repeats)
                row = {"trace": trace, "workload": workload, "unit": unit}
                for code, results in runs.items():
                    row[f"{code}_per_s"] = results[0]["count"] / min(r["wall_s"] for r in results)
                    row[f"{code}_digest"] = results[0]["digest"]
                line = f"{trace} {workload}: {row['ours_per_s']:,.0f} {unit}"
                if args.reference:
                    row["speedup"] = row["ours_per_s"] / row["reference_per_s"]
                    same = "same" if row["ours_digest"] == row["reference_digest"] else "DIFFERENT"
                    line += f", reference {row['reference_per_s']:,.0f} ({row['speedup']:.2f}x); {same} actions"
                print(line, flush=True)
                rows.append(row)
    write_results(args.out, rows, args.repeats, args.reference)


if __name__ == "__main__":
    main()
