import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from schedgym.agents.checkpoint import CheckpointError
from schedgym.agents.dispatcher import PolicyDispatcher
from schedgym.agents.export import export_policy
from schedgym.agents.solvers import PpoSolver
from schedgym.envs.jobshop import JobShopSimulator, load_benchmark, validate

from test_agent import tiny_policy  # noqa: F401  (module-scoped fixture)


def test_exported_policy_decides_like_the_solver(tiny_policy, tmp_path):  # noqa: F811
    path = export_policy(tiny_policy, tmp_path / "p.pt")
    dispatcher = PolicyDispatcher.load(path)
    for name in ("ft06", "la16"):
        inst = load_benchmark(name)
        sim = JobShopSimulator(inst)
        while not sim.done:
            sim.dispatch(dispatcher.choose(sim))
        assert validate(inst, sim.solution()) == []
        expected = PpoSolver(policy=str(tiny_policy)).solve(inst)
        assert np.array_equal(sim.solution().start_times, expected.start_times)


def test_third_party_loop_runs_without_sb3(tiny_policy, tmp_path):  # noqa: F811
    path = export_policy(tiny_policy, tmp_path / "p.pt")
    code = (
        "import sys, runpy; sys.argv = ['x', %r, 'ft06'];"
        "runpy.run_path(%r, run_name='__main__');"
        "assert 'stable_baselines3' not in sys.modules and 'sb3_contrib' not in sys.modules, 'SB3 was imported'"
    ) % (str(path), str(Path(__file__).parents[1] / "examples" / "third_party_loop.py"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ft06: makespan" in result.stdout


def test_export_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        PolicyDispatcher.load(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    (tmp_path / "bad.json").write_text('{"problem": "jobshop", "action_filter": "giffler-thompson"}')
    with pytest.raises(CheckpointError, match="not a TorchScript policy"):
        PolicyDispatcher.load(tmp_path / "bad.pt")
    (tmp_path / "bad.json").write_text('{"problem": "memmap", "action_filter": "giffler-thompson"}')
    with pytest.raises(CheckpointError, match="not an exported jobshop policy"):
        PolicyDispatcher.load(tmp_path / "bad.pt")
