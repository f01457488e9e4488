import json
import subprocess
import sys
import tempfile

import pytest


def run(*args):
    # from a neutral folder, so that the installed package (not the source folders) is what runs
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-m", "schedgym.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_list_shows_problems_suites_and_solvers():
    out = run("list").stdout
    for word in ("schedgym/JobShop-v0", "taillard-100x20", "dmu-50x20", "classic", "mwkr", "fdd-mwkr", "cpsat", "ppo-sample"):
        assert word in out


def test_solve_writes_a_valid_solution(tmp_path):
    result = run("solve", "jobshop", "ft06", "--solver", "cpsat", "--time-limit", "5", "--out", str(tmp_path / "s.json"), "--plot", str(tmp_path / "g.png"))
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["valid"] and row["objective"] == 55
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["problem"] == "jobshop" and len(saved["start_times"]) == 6
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_bench_json_rows_and_summary(tmp_path):
    out = tmp_path / "out.json"
    result = run(
        "bench", "--problem", "jobshop", "--suite", "taillard-15x15", "--solvers", "spt,mwkr,cpsat",
        "--time-limit", "1", "--instances", "ta01,ta02", "--json", str(out), "--markdown", str(tmp_path / "o.md"),
        "--plots", str(tmp_path / "plots"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 6
    for row in data["rows"]:
        assert set(row) >= {"problem", "instance", "solver", "objective", "lower_bound", "upper_bound", "gap_pct", "wall_s", "valid", "metrics"}
        assert row["valid"]
        assert row["gap_pct"] == pytest.approx(100 * (row["objective"] - row["upper_bound"]) / row["upper_bound"])
    summary = {s["solver"]: s for s in data["summary"]}
    assert set(summary) == {"spt", "mwkr", "cpsat"}
    assert summary["cpsat"]["n"] == 2 and summary["cpsat"]["valid_pct"] == 100
    assert summary["cpsat"]["mean_gap_pct"] <= summary["spt"]["mean_gap_pct"]
    assert "| rank | solver |" in (tmp_path / "o.md").read_text()
    assert list((tmp_path / "plots").glob("*.png"))


def test_bench_accepts_an_instance_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("2 2\n0 3 1 2\n1 4 0 1\n")
    result = run("bench", "--problem", "jobshop", "--suite", str(path), "--solvers", "mwkr", "--json", str(tmp_path / "o.json"))
    assert result.returncode == 0, result.stderr
    row = json.loads((tmp_path / "o.json").read_text())["rows"][0]
    assert row["instance"] == "mine" and row["gap_pct"] is None and row["valid"]


@pytest.mark.parametrize(
    "content,needle",
    [("2 2\n0 3 1 2\n", "line 2"), ("2 2\n0 3 1 2\n1 4 9 1\n", "out of range"), ("x y\n", "not an integer")],
)
def test_malformed_file_is_one_line_error_without_traceback(tmp_path, content, needle):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    result = run("solve", "jobshop", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0] and str(path) in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_names_are_clear():
    result = run("bench", "--problem", "jobshop", "--suite", "nope", "--solvers", "mwkr")
    assert result.returncode == 1 and "unknown job-shop suite 'nope'" in result.stderr
    result = run("solve", "jobshop", "ft06", "--solver", "magic")
    assert result.returncode == 1 and "unknown solver 'magic'" in result.stderr
