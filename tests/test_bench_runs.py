"""The leaderboard's rows file and --resume: rows are on disk as soon as they are made, and an interrupted run
picks up where it stopped without losing or repeating a row."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from schedgym import registry
from schedgym.bench import BenchRun, run_bench, without_wall_time
from schedgym.rows_file import RowsFile, row_key

RUNS = [BenchRun("jobshop", "la01", ["mwkr", "spt", "flaky"]), BenchRun("jobshop", "ft06", ["mwkr", "spt", "flaky"])]


class Interrupting:
    """Solves like MWKR, but the run is interrupted (Ctrl-C) at its ``interrupt_at``-th call."""

    name = "flaky"
    calls = 0

    def __init__(self, interrupt_at: int | None) -> None:
        self.interrupt_at = interrupt_at
        self.rule = registry.make_solver("jobshop", "mwkr")

    def solve(self, instance, *, time_limit=None, seed=None):
        Interrupting.calls += 1
        if Interrupting.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return self.rule.solve(instance, time_limit=time_limit, seed=seed)


@pytest.fixture
def flaky_solver():
    def register(interrupt_at):
        Interrupting.calls = 0
        registry.register_solver("jobshop", "flaky", lambda **_: Interrupting(interrupt_at), "test solver")

    yield register
    registry.SOLVERS.pop(("jobshop", "flaky"), None)


def test_every_row_is_in_the_rows_file(tmp_path, flaky_solver):
    flaky_solver(None)
    path = tmp_path / "rows.jsonl"
    result = run_bench(RUNS, rows_path=path, progress=False)
    on_disk = RowsFile(path).read()
    assert len(result["rows"]) == 6
    assert sorted(on_disk, key=row_key) == sorted(result["rows"], key=row_key)


def test_an_interrupted_run_resumes_without_losing_or_repeating_rows(tmp_path, flaky_solver):
    flaky_solver(None)
    reference = run_bench(RUNS, progress=False)["rows"]

    flaky_solver(2)  # the second flaky job (ft06) interrupts the run: la01 x 3 and ft06 x 2 are done
    path = tmp_path / "rows.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_bench(RUNS, rows_path=path, progress=False)
    before = RowsFile(path).read()
    assert [row_key(r) for r in before] == [row_key(r) for r in reference[:5]]
    with open(path, "a") as handle:
        handle.write('{"problem": "jobshop", "suite": "ft06", "inst')  # a row cut short by a kill

    flaky_solver(None)
    resumed = run_bench(RUNS, rows_path=path, resume=True, progress=False)["rows"]
    assert resumed[:5] == before  # the rows of the first run are kept as they were (same wall times: not re-run)
    assert without_wall_time(resumed) == without_wall_time(reference)
    assert len(RowsFile(path).read()) == 6  # the cut line is gone and nothing is there twice


def test_resume_needs_a_rows_file():
    with pytest.raises(ValueError, match="--resume needs the rows file"):
        run_bench(RUNS[:1], resume=True, progress=False)


def test_a_rows_file_that_is_not_one_is_refused(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("not json\n{}\n")
    with pytest.raises(ValueError, match="is not a leaderboard row"):
        run_bench([BenchRun("jobshop", "ft06", ["mwkr"])], rows_path=path, resume=True, progress=False)
    assert path.read_text() == "not json\n{}\n"  # left as it was


def test_a_raising_solver_gives_a_failed_row_not_a_lost_one(flaky_solver):
    class Broken:
        name = "broken"

        def solve(self, instance, *, time_limit=None, seed=None):
            raise ArithmeticError("no schedule today")

    registry.register_solver("jobshop", "flaky", lambda **_: Broken(), "test solver")
    rows = run_bench([BenchRun("jobshop", "ft06", ["flaky", "mwkr"])], progress=False)["rows"]
    assert rows[0]["error"] == "ArithmeticError: no schedule today" and rows[0]["valid"] is False and rows[0]["objective"] is None
    assert rows[1]["valid"] and "error" not in rows[1]


def test_a_killed_cli_run_resumes(tmp_path):
    """SIGKILL in the middle of `schedgym bench`, then the same command with --resume."""
    command = [sys.executable, "-m", "schedgym.cli", "bench", "--problem", "jobshop", "--suite", "taillard-15x15",
               "--solvers", "mwkr,ppo-sample", "--time-limit", "0.4", "--json", "o.json"]
    rows_path = tmp_path / "o.rows.jsonl"
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not rows_path.exists() or len(rows_path.read_text().splitlines()) < 5):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = RowsFile(rows_path).read()
    assert 5 <= len(before) < 20, "the run was not interrupted in the middle"

    finished = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    rows = json.loads((tmp_path / "o.json").read_text())["rows"]
    assert len(rows) == 20 and len({row_key(r) for r in rows}) == 20 and all(r["valid"] for r in rows)
    by_key = {row_key(r): r for r in rows}
    assert all(by_key[row_key(r)] == {k: v for k, v in r.items() if k != "solution"} for r in before)
