"""The Ray backend on a local Ray of 2 CPUs: the same rows as the local backend; a job whose worker dies is run
again and reported; a job past its time limit is killed and reported."""

import os
import sys
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='the Ray backend is an extra: pip install "schedgym[ray]"')

from schedgym import registry  # noqa: E402
from schedgym.backends import init_ray  # noqa: E402
from schedgym.bench import BenchRun, run_bench, without_wall_time  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test solvers below travel to the workers


@pytest.fixture(scope="module")
def local_ray():
    init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def test_solver():
    def register(factory):
        registry.register_solver("jobshop", "test-solver", factory, "test solver")

    yield register
    registry.SOLVERS.pop(("jobshop", "test-solver"), None)


class DiesOnce:
    """Kills its worker process the first time (a marker file remembers), then solves like MWKR."""

    name = "dies-once"

    def __init__(self, marker: str, always: bool = False) -> None:
        self.marker, self.always = marker, always

    def solve(self, instance, *, time_limit=None, seed=None):
        if self.always or not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return registry.make_solver("jobshop", "mwkr").solve(instance)


class Sleeper:
    """Ignores its time limit."""

    name = "sleeper"

    def solve(self, instance, *, time_limit=None, seed=None):
        time.sleep(600)


def test_the_cli_runs_on_ray_from_a_source_checkout(tmp_path):
    """Ray puts the driver's working directory on its workers' path: from the repository root, the workers must
    still import the installed package, not the source folder schedgym/ (which lacks the mapped subpackages)."""
    import json
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    command = [str(Path(sys.executable).parent / "schedgym"), "bench", "--problem", "jobshop", "--suite", "ft06", "--solvers", "mwkr,ppo", "--backend", "ray", "--json", str(tmp_path / "o.json")]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "o.json").read_text())["rows"]
    assert [r["solver"] for r in rows] == ["mwkr", "ppo"] and all(r["valid"] for r in rows)


def test_ray_gives_the_rows_of_the_local_backend(local_ray, tmp_path):
    runs = [BenchRun("jobshop", "ft06", ["mwkr", "spt", "ppo"]), BenchRun("jobshop", "la01", ["mwkr", "fdd-mwkr", "ppo"])]
    local = run_bench(runs, progress=False)
    distributed = run_bench(runs, progress=False, backend="ray", rows_path=tmp_path / "rows.jsonl")
    assert without_wall_time(distributed["rows"]) == without_wall_time(local["rows"])
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 6


def test_a_job_whose_worker_dies_is_run_again(local_ray, tmp_path, test_solver):
    test_solver(lambda **_: DiesOnce(str(tmp_path / "died")))
    rows = run_bench([BenchRun("jobshop", "ft06", ["test-solver", "mwkr"])], progress=False, backend="ray")["rows"]
    assert rows[0]["attempts"] == 2 and rows[0]["valid"] and rows[0]["objective"] == rows[1]["objective"]


def test_a_job_whose_worker_always_dies_is_reported(local_ray, tmp_path, test_solver):
    test_solver(lambda **_: DiesOnce(str(tmp_path / "died"), always=True))
    rows = run_bench([BenchRun("jobshop", "ft06", ["test-solver", "mwkr"])], progress=False, backend="ray", backend_options={"max_attempts": 2})["rows"]
    assert len(rows) == 2
    assert rows[0]["attempts"] == 2 and not rows[0]["valid"] and "worker died on all 2 tries" in rows[0]["error"]
    assert rows[1]["valid"]


def test_a_job_past_its_time_limit_is_killed_and_reported(local_ray, test_solver):
    test_solver(lambda **_: Sleeper())
    started = time.monotonic()
    rows = run_bench([BenchRun("jobshop", "ft06", ["test-solver", "mwkr"], time_limit=0.2)], progress=False, backend="ray", backend_options={"kill_grace_s": 1.0})["rows"]
    assert time.monotonic() - started < 300  # the sleeper would hold its worker for 600 s
    assert "killed after" in rows[0]["error"] and "over its time limit of 0.2 s" in rows[0]["error"]
    assert rows[1]["valid"]


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'dask'; choose one of local, ray"):
        run_bench([BenchRun("jobshop", "ft06", ["mwkr"])], backend="dask", progress=False)


def test_the_warm_start_teacher_solves_on_ray(local_ray):
    """CP-SAT solves for behaviour cloning fanned out on Ray: the same optimal schedules' makespans as in-process."""
    from schedgym.agents.imitation import solve_with_teacher
    from schedgym.envs.jobshop import generate_taillard, validate

    rng = np.random.default_rng(0)
    instances = [generate_taillard(5, 4, rng, name=f"demo-{k}") for k in range(4)]
    on_ray = solve_with_teacher(instances, 10.0, seed=0, backend="ray")
    local = solve_with_teacher(instances, 10.0, seed=0, backend="local")
    for instance, a, b in zip(instances, on_ray, local):
        assert validate(instance, a) == []
        assert a.makespan(instance) == b.makespan(instance)


def test_an_address_where_no_cluster_answers_fails_fast_with_a_clear_message(tmp_path):
    from typer.testing import CliRunner

    from schedgym.cli import app

    result = CliRunner().invoke(app, ["bench", "--problem", "jobshop", "--suite", "ft06", "--solvers", "mwkr", "--backend", "ray", "--address", "127.0.0.1:1"])
    assert result.exit_code == 1
    assert "no Ray cluster answers at '127.0.0.1:1'" in result.output and "ray start --head" in result.output
