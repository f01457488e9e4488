"""Where the leaderboard's jobs run: in this process, or fanned out on a Ray cluster.

A backend is made with its options (where it may start workers), then ``run`` takes the jobs still to run, the
solvers they use (keyed by ``(problem, solver name)``) and a callback that receives each finished row; it returns
when every job has given exactly one row. Rows come back in
completion order; :func:`schedgym.bench.run_bench` puts them in leaderboard order.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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


class InProcess:
    """One job after the other in this process. Time limits are the solvers' own (nothing is killed)."""

    def __init__(self, **_: Any) -> None:
        pass

    def run(self, jobs: list[BenchJob], solvers: dict[tuple[str, str], Solver], on_row: RowCallback) -> None:
        for job in jobs:
            on_row(run_job(job, solvers[job.solver_key]))

    def close(self) -> None:
        pass


class _JobRunner:
    """A Ray actor that runs jobs one at a time on one CPU (made into a remote class by :class:`OnRay`)."""

    def __init__(self) -> None:
        import torch

        import schedgym.problems  # noqa: F401  (the imports a first job would pay for, paid while the runner starts)

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


def _check_reachable(address: str | None) -> None:
    """Fail fast on a cluster address nothing answers at (Ray itself retries for minutes).

    Raises:
        ConnectionError: naming the address and what to do.
    """
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise ConnectionError(
            f"no Ray cluster answers at {address!r} ({exc}); start one there with `ray start --head`, "
            "or leave out --address to start a local Ray"
        ) from None


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start a local Ray runtime (``num_cpus``: default all cores) or join the cluster at ``address``.

    Ray puts the driver's working directory on its workers' ``sys.path``; started from a source checkout of
    schedgym, that would make the workers import the unmapped source folder ``schedgym/`` instead of the installed
    package. So Ray is started from an empty directory of its own, ``<tmp>/schedgym-ray``, which stays (the local
    Ray's processes keep it as their working directory); this process's working directory is restored at once.
    """
    import ray

    _check_reachable(address)
    neutral = Path(tempfile.gettempdir()) / "schedgym-ray"
    neutral.mkdir(exist_ok=True)
    previous = os.getcwd()
    os.chdir(neutral)
    try:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    finally:
        os.chdir(previous)


class OnRay:
    """Fan the jobs out on Ray: one runner actor per CPU of the cluster, each running one job at a time with the
    next one already queued (so no runner waits for a round trip to this process between two jobs).

    Made before the jobs are planned, so the runners start (and import torch and schedgym) while this process
    loads the suites. Uses the Ray runtime already started in this process (start it with :func:`init_ray`) if
    there is one; else joins the cluster at ``address`` (``auto``, ``host:6379``, ``ray://host:10001``) or,
    without one, starts a local Ray on this machine's cores. Each solver is put in the object store once.

    A job whose runner dies (killed, out of memory, a crash in native code) runs again on a fresh runner, up to
    ``max_attempts`` tries in all; its row then has ``attempts``, and after the last try an ``error``; the job
    queued behind it runs elsewhere without losing a try. A job with a time limit still running
    ``KILL_FACTOR * time_limit + kill_grace_s`` seconds after it started is stopped by killing its runner, and its
    row says so.

    Raises:
        ImportError: Ray is not installed (``pip install "schedgym[ray]"``).
        ConnectionError: nothing answers at ``address``.
    """

    def __init__(self, address: str | None = None, max_attempts: int = MAX_ATTEMPTS, kill_grace_s: float = KILL_GRACE_S) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError('the ray backend needs Ray: pip install "schedgym[ray]" (or use --backend local)') from None
        _check_reachable(address)
        if not ray.is_initialized():
            init_ray(address)
        self.ray = ray
        self.max_attempts = max_attempts
        self.kill_grace_s = kill_grace_s
        self.runner_class = ray.remote(num_cpus=1, max_restarts=0)(_JobRunner)
        self.starting: dict[Any, Any] = {}  # ready() ref -> actor not ready yet
        self.runners: list[_Runner] = []
        self.owner: dict[Any, _Runner] = {}  # run() ref -> the runner it is queued on
        self.waiting: list[tuple[BenchJob, int]] = []  # (job, attempt), popped from the end
        for _ in range(max(1, int(ray.cluster_resources().get("CPU", 1)))):
            self._start_runner()

    def _start_runner(self) -> None:
        actor = self.runner_class.remote()
        self.starting[actor.ready.remote()] = actor

    def _retire(self, runner: _Runner) -> None:
        """Drop a dead (or killed) runner: its queued jobs go back to the waiting list, a fresh runner starts."""
        self.runners.remove(runner)
        for ref, job, attempt in runner.queue:
            del self.owner[ref]
            self.waiting.append((job, attempt))
        self._start_runner()

    def run(self, jobs: list[BenchJob], solvers: dict[tuple[str, str], Solver], on_row: RowCallback) -> None:
        ray = self.ray
        solver_refs = {key: ray.put(solvers[key]) for key in {job.solver_key for job in jobs}}
        self.waiting = [(job, 1) for job in reversed(jobs)]  # leaderboard order

        def finish(row: dict, attempt: int) -> None:
            if attempt > 1:
                row["attempts"] = attempt
            on_row(row)

        while self.waiting or self.owner:
            now = time.monotonic()
            for runner in [r for depth in (1, 2) for r in self.runners if len(r.queue) < depth]:  # one job each, then a second
                if self.waiting:
                    job, attempt = self.waiting.pop()
                    ref = runner.actor.run.remote(job, solver_refs[job.solver_key])
                    if not runner.queue:
                        runner.head_started = now
                    runner.queue.append((ref, job, attempt))
                    self.owner[ref] = runner
            done, _ = ray.wait([*self.starting, *self.owner], num_returns=1, timeout=0.2)
            for ref in done:
                if ref in self.starting:
                    self.runners.append(_Runner(self.starting.pop(ref)))
                    continue
                if ref not in self.owner:  # queued on a runner retired since
                    continue
                runner = self.owner[ref]
                error = None
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayActorError as exc:  # the runner's process died, under the job it was running
                    head_ref, job, attempt = runner.queue.popleft()
                    del self.owner[head_ref]
                    self._retire(runner)
                    if attempt < self.max_attempts:
                        log.warning("job %s: its runner died (%s); running it again (try %d of %d)", job.key, type(exc).__name__, attempt + 1, self.max_attempts)
                        self.waiting.append((job, attempt + 1))
                    else:
                        finish(failed_row(job, f"its worker died on all {attempt} tries: {type(exc).__name__}", time.monotonic() - runner.head_started), attempt)
                    continue
                except ray.exceptions.RayError as exc:  # the job could not be run (e.g. its solver does not unpickle)
                    error = exc
                entry = next(e for e in runner.queue if e[0] == ref)
                runner.queue.remove(entry)
                del self.owner[ref]
                _, job, attempt = entry
                started, runner.head_started = runner.head_started, time.monotonic()
                if error is not None:
                    row = failed_row(job, f"{type(error).__name__}: {error}", time.monotonic() - started)
                finish(row, attempt)
            now = time.monotonic()
            for runner in list(self.runners):
                if not runner.queue:
                    continue
                ref, job, attempt = runner.queue[0]
                ran_s = now - runner.head_started
                if job.time_limit is None or ran_s <= KILL_FACTOR * job.time_limit + self.kill_grace_s:
                    continue
                ray.kill(runner.actor)
                runner.queue.popleft()
                del self.owner[ref]
                self._retire(runner)
                finish(failed_row(job, f"killed after {ran_s:.1f} s: over its time limit of {job.time_limit:g} s", ran_s), attempt)

    def close(self) -> None:
        """Stop the runners (the Ray runtime itself stays up for the rest of this process)."""
        for actor in [*(r.actor for r in self.runners), *self.starting.values()]:
            self.ray.kill(actor)
        self.runners, self.starting = [], {}


#: Backend name -> class; made with the backend options, then ``run(jobs, solvers, on_row)`` and ``close()``.
BACKENDS: dict[str, type] = {"local": InProcess, "ray": OnRay}
