"""Simulated against measured on the GPU: jobshop and socdag schedules of every solver replayed on disjoint SM
partitions of one GPU with calibrated kernels, and memmap maps replayed on an HBM arena with pinned host memory as
the slow memory.

    python benchmarks/replay_gpu.py --out DIR            # all three problems (about 5 minutes on an H100)
    python benchmarks/replay_gpu.py --only memmap --out DIR

Writes ``DIR/replay_gpu.json`` and ``DIR/replay_gpu.md``, plus the profiles it calibrated
(``DIR/kernels-jobshop.json``, ``DIR/socdag-latency.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from schedgym.atomic import atomic_write_text
from schedgym.envs.memmap.solution import SLOW, MemMapSolution, metrics
from schedgym.registry import get_problem, make_solver
from schedgym.replay.calibration import JOBSHOP_TIME_SCALE, calibrate_jobshop, calibrate_socdag
from schedgym.replay.cuda import CudaKernelProfile
from schedgym.replay.fidelity import rank_correlation, replay
from schedgym.replay.memory import measure_memory_rates, replay_mapping

JOBSHOP_INSTANCES = ["ta01", "ta02", "ta03", "ft10"]
JOBSHOP_SOLVERS = ["spt", "lpt", "fifo", "mor", "mwkr", "fdd-mwkr", "ppo", "cpsat"]
SOCDAG_STATIC = "socdag-static"
SOCDAG_STREAMS = ["stream-rate80-noise0.2-s0", "stream-rate40-noise0.2-s0"]
SOCDAG_SOLVERS = ["heft", "heft-online", "cpop", "met", "etf", "eft", "random", "ppo"]
MEMMAP_SOLVERS = ["greedy-size", "msa", "first-fit", "cpsat", "ppo"]


def log(message: str) -> None:
    print(message, flush=True)


def solve(problem: str, solver: str, instance, time_limit: float = 5.0):
    return make_solver(problem, solver).solve(instance, time_limit=time_limit, seed=0)


def order_agreement(rows: list[dict], key: str) -> dict:
    """Solvers ranked by their mean simulated and mean measured ``key``: the two orders and their rank correlation."""
    solvers = sorted({r["solver"] for r in rows})
    simulated = [float(np.mean([r[f"simulated_{key}"] for r in rows if r["solver"] == s])) for s in solvers]
    measured = [float(np.mean([r[f"measured_{key}"] for r in rows if r["solver"] == s])) for s in solvers]
    return {
        "simulated_order": [solvers[i] for i in np.argsort(simulated, kind="stable")],
        "measured_order": [solvers[i] for i in np.argsort(measured, kind="stable")],
        "rank_correlation": rank_correlation(simulated, measured),
    }


def run_jobshop(out_dir: str) -> dict:
    profile = calibrate_jobshop(os.path.join(out_dir, "kernels-jobshop.json"))
    spec = get_problem("jobshop")
    rows = []
    for name in JOBSHOP_INSTANCES:
        instance = spec.load_suite(name)[0]
        for solver in JOBSHOP_SOLVERS:
            report, _ = replay("jobshop", instance, solve("jobshop", solver, instance), device="cuda", profile=profile, time_scale=JOBSHOP_TIME_SCALE)
            rows.append({"solver": solver, **report.to_dict()})
            log(f"jobshop {name:6} {solver:9} simulated {report.simulated_makespan_us / 1e3:8.2f} ms measured {report.measured_makespan_us / 1e3:8.2f} ms "
                f"error {report.makespan_error_pct:+6.2f}% task error mean {report.task_error_pct_mean:5.1f}%")
    return {"rows": rows, "order": order_agreement(rows, "makespan_us"), "fits": profile.fits}


def run_socdag(out_dir: str) -> dict:
    table_path = os.path.join(out_dir, "socdag-latency.json")
    document = calibrate_socdag(table_path)
    profile, time_scale = CudaKernelProfile.load(table_path), document["time_scale"]
    spec = get_problem("socdag")
    result = {"latency_us": document["latency_us"], "task_kernels": document["task_kernels"]}
    for label, names, solvers, key in [
        ("static", [SOCDAG_STATIC], [*SOCDAG_SOLVERS, "cpsat"], "makespan_us"),
        ("stream", SOCDAG_STREAMS, SOCDAG_SOLVERS, "mean_job_us"),
    ]:
        rows = []
        for instance in [i for name in names for i in spec.load_suite(f"{name}@{table_path}")]:
            for solver in solvers:
                report, _ = replay("socdag", instance, solve("socdag", solver, instance), device="cuda", profile=profile, time_scale=time_scale)
                rows.append({"solver": solver, **report.to_dict()})
                log(f"socdag {instance.name:28} {solver:11} makespan sim {report.simulated_makespan_us / 1e3:7.2f} ms meas {report.measured_makespan_us / 1e3:7.2f} ms "
                    f"({report.makespan_error_pct:+6.2f}%) mean job ({report.mean_job_error_pct:+6.2f}%) task error {report.task_error_pct_mean:5.1f}%")
        result[label] = {"rows": rows, "order": order_agreement(rows, key)}
    return result


def run_memmap() -> dict:
    spec = get_problem("memmap")
    rates = measure_memory_rates()
    log(f"memmap rates: {rates}")
    rows = []
    for instance in spec.load_suite("traced-models"):
        calibrated = rates.apply(instance)
        maps = {solver: solve("memmap", solver, instance, 1.0) for solver in MEMMAP_SOLVERS}
        maps["all-slow"] = MemMapSolution(np.full(instance.n_buffers, SLOW))
        for solver, solution in maps.items():
            modelled = metrics(instance, solution)["runtime_s"]
            modelled_calibrated = metrics(calibrated, solution)["runtime_s"]
            modelled_launches = rates.runtime_s(instance, solution)
            measured = replay_mapping(instance, solution, device="cuda", repeats=20)
            rows.append({"instance": instance.name, "solver": solver, "modelled_s": modelled, "modelled_calibrated_s": modelled_calibrated,
                         "modelled_launches_s": modelled_launches, "measured_s": measured})
            log(f"memmap {instance.name:52} {solver:11} modelled {modelled * 1e6:8.2f} us, measured rates {modelled_calibrated * 1e6:8.2f} us, + launches {modelled_launches * 1e6:8.2f} us, measured {measured * 1e6:8.2f} us")
    result: dict = {"rows": rows, "rates": dataclasses.asdict(rates)}
    for model in ("modelled_s", "modelled_calibrated_s", "modelled_launches_s"):
        per_instance = []
        for name in dict.fromkeys(r["instance"] for r in rows):
            mine = [r for r in rows if r["instance"] == name]
            per_instance.append(rank_correlation([r[model] for r in mine], [r["measured_s"] for r in mine]))
        result[model] = {
            "rank_correlation_all": rank_correlation([r[model] for r in rows], [r["measured_s"] for r in rows]),
            "rank_correlation_within_instance_mean": float(np.nanmean(per_instance)),
            "rank_correlation_within_instance": per_instance,
        }
    return result


def summary_markdown(results: dict) -> str:
    lines = ["# GPU replay: simulated against measured", "", f"GPU: {results.get('gpu')}", ""]
    for problem in ("jobshop", "socdag"):
        if problem not in results:
            continue
        parts = [("", results[problem])] if problem == "jobshop" else [(f" ({k})", results[problem][k]) for k in ("static", "stream")]
        for label, part in parts:
            errors = np.abs([r["makespan_error_pct"] for r in part["rows"]])
            jobs = np.abs([r["mean_job_error_pct"] for r in part["rows"]])
            lines += [
                f"## {problem}{label}: {len(part['rows'])} schedules",
                f"- |makespan error|: mean {errors.mean():.2f}%, max {errors.max():.2f}%; within 10%: {(errors <= 10).sum()}/{len(errors)}, within 5%: {(errors <= 5).sum()}/{len(errors)}",
                f"- |mean job duration error|: mean {jobs.mean():.2f}%, max {jobs.max():.2f}%",
                f"- solver order simulated: {', '.join(part['order']['simulated_order'])}",
                f"- solver order measured:  {', '.join(part['order']['measured_order'])} (rank correlation {part['order']['rank_correlation']:.3f})", "",
            ]
    if "memmap" in results:
        m = results["memmap"]
        lines += [f"## memmap: {len(m['rows'])} maps", f"- measured rates: {m['rates']}"]
        for model, label in (("modelled_s", "the suite's cost model"), ("modelled_calibrated_s", "the cost model with the measured rates"),
                             ("modelled_launches_s", "the same plus the measured launch cost per kernel")):
            lines += [f"- Spearman, {label} vs measured runtime: all maps {m[model]['rank_correlation_all']:.3f}, "
                      f"within one trace (mean over traces) {m[model]['rank_correlation_within_instance_mean']:.3f}"]
        lines += [""]
    return "\n".join(lines)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--only", default="jobshop,socdag,memmap")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark replays on a GPU; torch.cuda.is_available() is False here")
    os.makedirs(args.out, exist_ok=True)
    results: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    for problem in args.only.split(","):
        started = time.perf_counter()
        results[problem] = run_jobshop(args.out) if problem == "jobshop" else run_socdag(args.out) if problem == "socdag" else run_memmap()
        log(f"{problem}: {time.perf_counter() - started:.1f} s")
    atomic_write_text(os.path.join(args.out, "replay_gpu.json"), json.dumps(results, indent=1) + "\n")
    summary = summary_markdown(results)
    atomic_write_text(os.path.join(args.out, "replay_gpu.md"), summary + "\n")
    print(summary)


if __name__ == "__main__":
    main()
