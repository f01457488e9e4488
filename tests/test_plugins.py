"""Plugins: the example plugin package, installed for real, adds a problem with its env and a jobshop solver; a
broken plugin is named and skipped without breaking the others."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from schedgym import registry

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin installed by pip into a folder of its own (its dist-info carries the entry points)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(REPO / "examples" / "plugin")],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture
def broken_site(tmp_path) -> Path:
    """A distribution whose two entry points fail: one names a module that does not exist, one registers a
    solver and then raises."""
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[schedgym.solvers]\nmissing-module = broken_plugin_nowhere:register\nhalf-registered = broken_half:register\n")
    (tmp_path / "broken_half.py").write_text(
        "from schedgym.registry import register_solver\n"
        "def register():\n"
        "    register_solver('jobshop', 'half-solver', lambda **_: None, 'never usable')\n"
        "    raise RuntimeError('boom while registering')\n"
    )
    return tmp_path


@pytest.fixture
def registries_restored():
    saved = [dict(r) for r in (registry.PROBLEMS, registry.SOLVERS, registry.PLUGIN_PROBLEMS, registry.PLUGIN_ERRORS, gym.registry)]
    yield
    for current, before in zip((registry.PROBLEMS, registry.SOLVERS, registry.PLUGIN_PROBLEMS, registry.PLUGIN_ERRORS, gym.registry), saved):
        current.clear()
        current.update(before)


def schedgym(*args: str, path: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    return subprocess.run([sys.executable, "-m", "schedgym.cli", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_list_shows_the_plugins_problem_env_and_solvers(plugin_site, tmp_path):
    result = schedgym("list", path=[plugin_site], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "problem singlemachine  (env id schedgym_example/SingleMachine-v0, plugin single-machine (schedgym-example-plugin))" in result.stdout
    assert "random-dispatch" in result.stdout and "[plugin random-dispatch (schedgym-example-plugin)]" in result.stdout
    assert "mwkr" in result.stdout  # the built-ins are still there


def test_bench_runs_the_plugins_problem_and_solver(plugin_site, tmp_path):
    result = schedgym("bench", "--problem", "singlemachine", "--suite", "sm20", "--solvers", "wspt,spt", "--json", "sm.json", path=[plugin_site], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "sm.json").read_text())["rows"]
    assert len(rows) == 20 and all(r["valid"] for r in rows)
    wspt = [r for r in rows if r["solver"] == "wspt"]
    spt = [r for r in rows if r["solver"] == "spt"]
    assert all(r["gap_pct"] == 0 for r in wspt)  # Smith's rule is optimal
    assert sum(r["gap_pct"] for r in spt) > 0

    result = schedgym("bench", "--problem", "jobshop", "--suite", "ft06", "--solvers", "random-dispatch,mwkr", "--json", "js.json", path=[plugin_site], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "js.json").read_text())["rows"]
    assert [r["solver"] for r in rows] == ["random-dispatch", "mwkr"] and all(r["valid"] for r in rows)


def test_the_plugins_env_passes_check_env(plugin_site, monkeypatch, registries_restored):
    monkeypatch.syspath_prepend(str(plugin_site))
    registry.load_plugins()
    assert "singlemachine" in registry.problem_names()
    env = gym.make("schedgym_example/SingleMachine-v0")
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    terminated = False
    while not terminated:
        mask = env.unwrapped.action_masks()
        obs, reward, terminated, _, info = env.step(int(mask.argmax()))
    problem = registry.get_problem("singlemachine")
    assert problem.validate(env.unwrapped.instance, info["solution"]) == []


def test_a_broken_plugin_is_named_and_skipped(plugin_site, broken_site, tmp_path):
    result = schedgym("list", path=[broken_site, plugin_site], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "missing-module = broken_plugin_nowhere:register: ModuleNotFoundError" in result.stderr
    assert "half-registered = broken_half:register: RuntimeError: boom while registering" in result.stderr
    assert "half-solver" not in result.stdout  # what it registered before failing was taken back
    assert "random-dispatch" in result.stdout and "mwkr" in result.stdout

    result = schedgym("bench", "--problem", "jobshop", "--suite", "ft06", "--solvers", "mwkr,random-dispatch", "--json", "o.json", path=[broken_site, plugin_site], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(json.loads((tmp_path / "o.json").read_text())["rows"]) == 2


def test_solver_names_may_not_hold_the_argument_separator(registries_restored):
    with pytest.raises(ValueError, match="may not contain ':'"):
        registry.register_solver("jobshop", "bad:name", lambda **_: None, "")
