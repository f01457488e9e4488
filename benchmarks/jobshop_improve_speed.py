"""Moves per second of the job-shop improvement search: incremental re-evaluation vs a full one, side by side.

On each instance one random walk of N5 moves from the FDD/MWKR schedule is recorded, then replayed three ways:

* ``incremental``: :meth:`DisjunctiveSchedule.swap` (local order repair, heads and tails propagated from the pair);
* ``full``: the same swap followed by :meth:`DisjunctiveSchedule.reevaluate` (Kahn's algorithm over the graph);
* ``env``: ``schedgym/JobShopImprove-v0`` steps (incremental swap, N5 mask and the whole observation).

A second random walk, of N7 moves (each re-evaluated from scratch), is replayed by
:meth:`DisjunctiveSchedule.n7_move` and by the env with ``neighbourhood="n7"`` (whose mask also lists the N7 moves).

    python benchmarks/jobshop_improve_speed.py --instances ta01,ta41,ta71 --moves 20000
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from schedgym.baselines.jobshop import DispatchingRule
from schedgym.envs.jobshop import load_benchmark
from schedgym.envs.jobshop.disjunctive import DisjunctiveSchedule
from schedgym.envs.jobshop.improve import JobShopImproveEnv


def random_walk(instance, start: np.ndarray, n_moves: int, legal_moves, make_move) -> list:
    """Up to ``n_moves`` moves from the schedule ``start``, each drawn uniformly (seed 0) from
    ``legal_moves(schedule)`` and made by ``make_move(schedule, move)``; the moves in order."""
    schedule = DisjunctiveSchedule.from_start_times(instance, start)
    rng = np.random.default_rng(0)
    moves = []
    for _ in range(n_moves):
        legal = legal_moves(schedule)
        if not legal:
            break
        moves.append(legal[int(rng.integers(len(legal)))])
        make_move(schedule, moves[-1])
    return moves


def walk(instance, n_moves: int) -> tuple[np.ndarray, list[int]]:
    """A random walk of N5 moves from the FDD/MWKR schedule: its start times and the operations swapped."""
    start = DispatchingRule("fdd-mwkr").solve(instance).start_times
    moves = random_walk(instance, start, n_moves, lambda schedule: np.flatnonzero(schedule.moves()).tolist(), DisjunctiveSchedule.swap)
    return start, moves


def n7_walk(instance, start: np.ndarray, n_moves: int) -> list[tuple[int, int]]:
    """A random walk of N7 moves from ``start``: (kind, operation) per move."""
    return random_walk(instance, start, n_moves, lambda schedule: [(int(k), int(v)) for k, v in np.argwhere(schedule.n7_moves())],
                       lambda schedule, move: schedule.n7_move(move[1], move[0]))


def n7_moves_per_s(instance, start: np.ndarray, moves: list[tuple[int, int]], through_env: bool) -> float:
    """Replays of an N7 walk, by the schedule alone or by the env's steps."""
    if through_env:
        env = JobShopImproveEnv(instance, horizon=len(moves) + 1, neighbourhood="n7")
        env.reset(options={"start_times": start})
        actions = [kind * env.encoder.n_nodes + env.encoder.node(v, instance.n_ops) for kind, v in moves]
        began = time.perf_counter()
        for action in actions:
            env.step(action)
    else:
        schedule = DisjunctiveSchedule.from_start_times(instance, start)
        began = time.perf_counter()
        for kind, v in moves:
            schedule.n7_move(v, kind)
    return len(moves) / (time.perf_counter() - began)


def moves_per_s(instance, start: np.ndarray, moves: list[int], full: bool) -> float:
    schedule = DisjunctiveSchedule.from_start_times(instance, start)
    began = time.perf_counter()
    for u in moves:
        schedule.swap(u)
        if full:
            schedule.reevaluate()
    return len(moves) / (time.perf_counter() - began)


def env_steps_per_s(instance, start: np.ndarray, moves: list[int]) -> float:
    env = JobShopImproveEnv(instance, horizon=len(moves) + 1)
    env.reset(options={"start_times": start})
    began = time.perf_counter()
    for u in moves:
        env.step(env.encoder.node(u, instance.n_ops))
    return len(moves) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", default="ta01,ta41,ta71")
    parser.add_argument("--moves", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/jobshop_improve_speed.json"))
    args = parser.parse_args()
    rows = []
    for name in args.instances.split(","):
        instance = load_benchmark(name)
        start, moves = walk(instance, args.moves)
        moves_per_s(instance, start, moves[:100], full=False)  # compile
        incremental = moves_per_s(instance, start, moves, full=False)
        full = moves_per_s(instance, start, moves, full=True)
        env = env_steps_per_s(instance, start, moves)
        n7 = n7_walk(instance, start, min(args.moves, 2000))
        n7_rate = n7_moves_per_s(instance, start, n7, through_env=False)
        n7_env = n7_moves_per_s(instance, start, n7, through_env=True)
        rows.append({"instance": name, "operations": instance.n_operations, "moves": len(moves), "incremental_moves_per_s": incremental,
                     "full_moves_per_s": full, "incremental_over_full": incremental / full, "env_steps_per_s": env,
                     "n7_moves": len(n7), "n7_moves_per_s": n7_rate, "n7_env_steps_per_s": n7_env})
        print(f"{name} ({instance.n_operations} ops): incremental {incremental:,.0f} moves/s, full re-evaluation {full:,.0f} ({incremental / full:.2f}x), "
              f"env {env:,.0f} steps/s; N7 {n7_rate:,.0f} moves/s, env {n7_env:,.0f} steps/s", flush=True)
    result = {"machine": f"{platform.node()} ({platform.machine()}, {platform.python_version()})", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
