"""Where the leaderboard's jobs run: in this process, or fanned out on a Ray cluster.

A backend takes the jobs still to run, the solvers they use (keyed by ``(problem, solver name)``) and a callback
that receives each finished row; it returns when every job has given exactly one row. Rows come back in
completion order; :func:`schedgym.bench.run_bench` puts them in leaderboard order.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class _Runner:
    """A ready runner actor and its queued jobs ``(object ref, job, attempt)``; the first one is running."""

    actor: Any
    queue: deque = field(default_factory=deque)
    head_started: float = 0.0  # when the first queued job started (the one before it returned)


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
    """Fan the jobs out on Ray: one runner actor per CPU of the cluster, each running one job at a time with the
    next one already queued (so no runner waits for a round trip to this process between two jobs).

    Joins the cluster at ``address`` (``auto``, ``ray://host:10001``...) or, without one, the Ray runtime already
    started in this process, else starts a local one on this machine's cores. Each solver is put in the object
    store once. A job whose runner dies (killed, out of memory, a crash in native code) runs again on a fresh
    runner, up to ``max_attempts`` tries in all; its row then has ``attempts``, and after the last try an
    ``error``; the job queued behind it runs elsewhere without losing a try. A job with a time limit still
    running ``KILL_FACTOR * time_limit + kill_grace_s`` seconds after it started is stopped by killing its runner,
    and its row says so.

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
    starting: dict[Any, Any] = {}  # ready() ref -> actor not ready yet
    runners: list[_Runner] = []
    owner: dict[Any, _Runner] = {}  # run() ref -> the runner it is queued on

    def start_runner() -> None:
        actor = runner_class.remote()
        starting[actor.ready.remote()] = actor

    def retire(runner: _Runner) -> None:
        """Drop a dead (or killed) runner: its queued jobs go back to the waiting list, a fresh runner starts."""
        runners.remove(runner)
        for ref, job, attempt in runner.queue:
            del owner[ref]
            waiting.append((job, attempt))
        start_runner()

    def finish(row: dict, attempt: int) -> None:
        if attempt > 1:
            row["attempts"] = attempt
        on_row(row)

    for _ in range(min(len(jobs), max(1, int(ray.cluster_resources().get("CPU", 1))))):
        start_runner()
    while waiting or owner:
        now = time.monotonic()
        for runner in [r for depth in (1, 2) for r in runners if len(r.queue) < depth]:  # one job each, then a second
            if waiting:
                job, attempt = waiting.pop()
                ref = runner.actor.run.remote(job, solver_refs[job.solver_key])
                if not runner.queue:
                    runner.head_started = now
                runner.queue.append((ref, job, attempt))
                owner[ref] = runner
        done, _ = ray.wait([*starting, *owner], num_returns=1, timeout=0.2)
        for ref in done:
            if ref in starting:
                runners.append(_Runner(starting.pop(ref)))
                continue
            if ref not in owner:  # queued on a runner retired since
                continue
            runner = owner[ref]
            error = None
            try:
                row = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the runner's process died, under the job it was running
                head_ref, job, attempt = runner.queue.popleft()
                del owner[head_ref]
                retire(runner)
                if attempt < max_attempts:
                    log.warning("job %s: its runner died (%s); running it again (try %d of %d)", job.key, type(exc).__name__, attempt + 1, max_attempts)
                    waiting.append((job, attempt + 1))
                else:
                    finish(failed_row(job, f"its worker died on all {attempt} tries: {type(exc).__name__}", time.monotonic() - runner.head_started), attempt)
                continue
            except ray.exceptions.RayError as exc:  # the job could not be run (e.g. its solver does not unpickle)
                error = exc
            entry = next(e for e in runner.queue if e[0] == ref)
            runner.queue.remove(entry)
            del owner[ref]
            _, job, attempt = entry
            started, runner.head_started = runner.head_started, time.monotonic()
            if error is not None:
                row = failed_row(job, f"{type(error).__name__}: {error}", time.monotonic() - started)
            finish(row, attempt)
        now = time.monotonic()
        for runner in list(runners):
            if not runner.queue:
                continue
            ref, job, attempt = runner.queue[0]
            if job.time_limit is None or now - runner.head_started <= KILL_FACTOR * job.time_limit + kill_grace_s:
                continue
            ray.kill(runner.actor)
            runner.queue.popleft()
            del owner[ref]
            retire(runner)
            finish(failed_row(job, f"killed after {now - runner.head_started:.1f} s: over its time limit of {job.time_limit:g} s", now - runner.head_started), attempt)
    for actor in [*(r.actor for r in runners), *starting.values()]:
        ray.kill(actor)


BACKENDS: dict[str, Callable[..., None]] = {"local": run_in_process, "ray": run_on_ray}
