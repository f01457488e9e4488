"""Where the leaderboard's jobs run: in this process, or fanned out on a Ray cluster.

A backend takes the jobs still to run, the solvers they use (keyed by ``(problem, solver name)``) and a callback
that receives each finished row; it returns when every job has given exactly one row. Rows come back in
completion order; :func:`schedgym.bench.run_bench` puts them in leaderboard order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from schedgym.bench import BenchJob, failed_row, run_job
from schedgym.registry import Solver

log = logging.getLogger(__name__)

RowCallback = Callable[[dict], None]

#: A Ray job whose runner process dies is tried up to this many times in all before its row reports the death.
MAX_ATTEMPTS = 3
#: A Ray job with a time limit is stopped once it has run ``KILL_FACTOR * time_limit + kill_grace_s`` seconds.
KILL_FACTOR = 1.5
KILL_GRACE_S = 30.0


def run_in_process(jobs: list[BenchJob], solvers: dict[tuple[str, str], Solver], on_row: RowCallback, **_: Any) -> None:
    """One job after the other in this process. Time limits are the solvers' own (nothing is killed)."""
    for job in jobs:
        on_row(run_job(job, solvers[job.solver_key]))


class _JobRunner:
    """A Ray actor that runs jobs one at a time on one CPU (made into a remote class in :func:`run_on_ray`)."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)  # one core per runner: the GNN policies and the rules are single-threaded

    def ready(self) -> bool:
        return True

    def run(self, job: BenchJob, solver: Solver) -> dict:
        return run_job(job, solver)


def run_on_ray(
    jobs: list[BenchJob],
    solvers: dict[tuple[str, str], Solver],
    on_row: RowCallback,
    *,
    address: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    kill_grace_s: float = KILL_GRACE_S,
    **_: Any,
) -> None:
    """Fan the jobs out on Ray: one runner actor per CPU of the cluster, one job at a time each.

    Joins the cluster at ``address`` (``auto``, ``ray://host:10001``...) or, without one, the Ray runtime already
    started in this process, else starts a local one on this machine's cores. Each solver is put in the object
    store once. A job whose runner dies (killed, out of memory, a crash in native code) runs again on a fresh
    runner, up to ``max_attempts`` tries in all; its row then has ``attempts``, and after the last try an
    ``error``. A job with a time limit still running ``KILL_FACTOR * time_limit + kill_grace_s`` seconds after it
    started on a ready runner is stopped by killing its runner, and its row says so.

    Raises:
        ImportError: Ray is not installed (``pip install "schedgym[ray]"``).
    """
    try:
        import ray
    except ImportError:
        raise ImportError('the ray backend needs Ray: pip install "schedgym[ray]" (or use --backend local)') from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    runner_class = ray.remote(num_cpus=1, max_restarts=0)(_JobRunner)
    solver_refs = {key: ray.put(solvers[key]) for key in {job.solver_key for job in jobs}}
    waiting = [(job, 1) for job in reversed(jobs)]  # popped from the end: leaderboard order
    starting: dict[Any, Any] = {}  # ready() ref -> runner not ready yet
    idle: list[Any] = []
    running: dict[Any, tuple[Any, BenchJob, int, float]] = {}  # run() ref -> (runner, job, attempt, started at)

    def start_runner() -> None:
        runner = runner_class.remote()
        starting[runner.ready.remote()] = runner

    def finish(row: dict, attempt: int) -> None:
        if attempt > 1:
            row["attempts"] = attempt
        on_row(row)

    for _ in range(min(len(jobs), max(1, int(ray.cluster_resources().get("CPU", 1))))):
        start_runner()
    while waiting or running:
        while waiting and idle:
            job, attempt = waiting.pop()
            runner = idle.pop()
            running[runner.run.remote(job, solver_refs[job.solver_key])] = (runner, job, attempt, time.monotonic())
        done, _ = ray.wait([*starting, *running], num_returns=1, timeout=0.2)
        for ref in done:
            if ref in starting:
                idle.append(starting.pop(ref))
                continue
            runner, job, attempt, started = running.pop(ref)
            try:
                row = ray.get(ref)
                idle.append(runner)
            except ray.exceptions.RayActorError as exc:  # the runner's process died under the job
                start_runner()
                if attempt < max_attempts:
                    log.warning("job %s: its runner died (%s); running it again (try %d of %d)", job.key, type(exc).__name__, attempt + 1, max_attempts)
                    waiting.append((job, attempt + 1))
                    continue
                row = failed_row(job, f"its worker died on all {attempt} tries: {type(exc).__name__}", time.monotonic() - started)
            except ray.exceptions.RayError as exc:  # the job could not be run (e.g. its solver does not unpickle)
                idle.append(runner)
                row = failed_row(job, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
            finish(row, attempt)
        now = time.monotonic()
        for ref, (runner, job, attempt, started) in list(running.items()):
            if job.time_limit is None or now - started <= KILL_FACTOR * job.time_limit + kill_grace_s:
                continue
            ray.kill(runner)
            del running[ref]
            start_runner()
            finish(failed_row(job, f"killed after {now - started:.1f} s: over its time limit of {job.time_limit:g} s", now - started), attempt)
    for runner in [*idle, *starting.values()]:
        ray.kill(runner)


BACKENDS: dict[str, Callable[..., None]] = {"local": run_in_process, "ray": run_on_ray}
