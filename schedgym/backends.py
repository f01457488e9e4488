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

#: A Ray job whose worker process dies is run again up to this many times in all before its row reports the death.
MAX_ATTEMPTS = 3
#: A Ray job with a time limit is killed once it has run ``KILL_FACTOR * time_limit + kill_grace_s`` seconds.
KILL_FACTOR = 1.5
KILL_GRACE_S = 30.0


def run_in_process(jobs: list[BenchJob], solvers: dict[tuple[str, str], Solver], on_row: RowCallback, **_: Any) -> None:
    """One job after the other in this process. Time limits are the solvers' own (nothing is killed)."""
    for job in jobs:
        on_row(run_job(job, solvers[job.solver_key]))


def _run_job_remote(job: BenchJob, solver: Solver, torch_threads: int) -> dict:
    import torch

    torch.set_num_threads(torch_threads)  # one core per Ray task: the GNN policies and the rules are single-threaded
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
    """Fan the jobs out on Ray, one CPU per job, at most as many in flight as the cluster has CPUs.

    Joins the cluster at ``address`` (``auto``, ``ray://host:10001``...) or, without one, the Ray runtime already
    started in this process, else starts a local one on this machine's cores. Each solver is put in the object
    store once. A job whose worker dies (killed, out of memory, a crash in native code) runs again, up to
    ``max_attempts`` in all; its row then has ``attempts``, and after the last try an ``error``. A job with a time
    limit that runs past ``KILL_FACTOR * time_limit + kill_grace_s`` seconds (counted from its submission, which is
    its start since no job waits for a CPU) is cancelled and its row says so.

    Raises:
        ImportError: Ray is not installed (``pip install "schedgym[ray]"``).
    """
    try:
        import ray
    except ImportError:
        raise ImportError('the ray backend needs Ray: pip install "schedgym[ray]" (or use --backend local)') from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    run_remote = ray.remote(num_cpus=1, max_retries=0)(_run_job_remote)  # retried here, to count and report the tries
    capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
    solver_refs = {key: ray.put(solvers[key]) for key in {job.solver_key for job in jobs}}
    waiting = [(job, 1) for job in reversed(jobs)]  # popped from the end: leaderboard order
    running: dict[Any, tuple[BenchJob, int, float]] = {}  # object ref -> (job, attempt, submitted at)

    while waiting or running:
        while waiting and len(running) < capacity:
            job, attempt = waiting.pop()
            running[run_remote.remote(job, solver_refs[job.solver_key], 1)] = (job, attempt, time.monotonic())
        done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        for ref in done:
            job, attempt, submitted = running.pop(ref)
            try:
                row = ray.get(ref)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError) as exc:
                if attempt < max_attempts:
                    log.warning("job %s: its worker died (%s); running it again (try %d of %d)", job.key, type(exc).__name__, attempt + 1, max_attempts)
                    waiting.append((job, attempt + 1))
                    continue
                row = failed_row(job, f"its worker died on all {attempt} tries: {type(exc).__name__}", time.monotonic() - submitted)
            except ray.exceptions.RayError as exc:
                row = failed_row(job, f"{type(exc).__name__}: {exc}", time.monotonic() - submitted)
            if attempt > 1:
                row["attempts"] = attempt
            on_row(row)
        now = time.monotonic()
        for ref, (job, attempt, submitted) in list(running.items()):
            if job.time_limit is None or now - submitted <= KILL_FACTOR * job.time_limit + kill_grace_s:
                continue
            ray.cancel(ref, force=True)
            del running[ref]
            row = failed_row(job, f"killed after {now - submitted:.1f} s: over its time limit of {job.time_limit:g} s", now - submitted)
            if attempt > 1:
                row["attempts"] = attempt
            on_row(row)


BACKENDS: dict[str, Callable[..., None]] = {"local": run_in_process, "ray": run_on_ray}
