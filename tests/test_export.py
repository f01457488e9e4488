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


def _route_with(router, instance):
    sim = instance.simulator()
    for request in range(instance.workload.n_requests):
        sim.advance_to(float(instance.workload.arrival_s[request]))
        sim.route(request, router.choose(sim, request))
    sim.run_to_completion()
    return instance.solution_of(sim)


def test_exported_router_routes_like_the_greedy_policy_on_any_replica_count(tmp_path):
    from dataclasses import replace

    from schedgym.agents.checkpoint import load_network
    from schedgym.agents.dispatcher import RouterDispatcher
    from schedgym.agents.rollout import run_rollouts
    from schedgym.envs.llmrouting import resolve_suite, validate as validate_routing

    path = export_policy("llmrouting-default", tmp_path / "router.pt")
    router = RouterDispatcher.load(path)
    net, _ = load_network("llmrouting-default", "llmrouting")
    for suite in ("mooncake-conv-high-4", "azure-conv-high-8"):
        full = resolve_suite(suite)[0]
        instance = replace(full, workload=full.workload.head(300))
        solution = _route_with(router, instance)
        assert validate_routing(instance.workload, solution) == []
        expected = run_rollouts(net, [instance], problem="llmrouting")[0]
        assert solution.replica.tolist() == expected.actions
        assert len(set(expected.actions)) > 1  # the policy spreads the requests


def test_router_export_errors(tmp_path):
    from schedgym.agents.dispatcher import RouterDispatcher

    with pytest.raises(CheckpointError, match="export covers jobshop and llmrouting"):
        export_policy("socdag-default", tmp_path / "s.pt")
    jobshop_path = export_policy("jobshop-default", tmp_path / "j.pt")
    with pytest.raises(CheckpointError, match="not an exported llmrouting policy"):
        RouterDispatcher.load(jobshop_path)
    assert not (tmp_path / "s.pt").exists()
