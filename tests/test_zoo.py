"""The policy zoo: every shipped policy is listed with what it was trained on and its leaderboard figures, and
loads by name as ``ppo:<name>``."""

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schedgym.agents.checkpoint import SHIPPED_POLICIES, CheckpointError
from schedgym.agents.zoo import policy_zoo
from schedgym.cli import app
from schedgym.envs.jobshop import load_benchmark, validate
from schedgym.registry import make_solver

REPO = Path(__file__).resolve().parents[1]


def test_every_shipped_policy_is_in_the_zoo_with_its_figures():
    zoo = {entry.name: entry for entry in policy_zoo()}
    assert set(zoo) == set(SHIPPED_POLICIES)
    for name, entry in zoo.items():
        assert name.startswith(entry.problem) and entry.steps > 0 and entry.where_trained and entry.trained_on
        assert entry.leaderboard, f"{name} has no leaderboard figures"
    assert "10x10" in zoo["jobshop-default"].trained_on


def test_the_zoo_figures_are_those_of_the_recorded_leaderboard():
    """The shipped figures file matches what benchmarks/policy_zoo_figures.py computes from the leaderboard run."""
    spec = importlib.util.spec_from_file_location("policy_zoo_figures", REPO / "benchmarks" / "policy_zoo_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = json.loads((REPO / "benchmarks" / "results" / "default_leaderboard.json").read_text())
    assert module.zoo_figures(result) == {entry.name: entry.leaderboard for entry in policy_zoo()}


def test_policies_command_lists_them():
    result = CliRunner().invoke(app, ["policies"])
    assert result.exit_code == 0, result.output
    for entry in policy_zoo():
        usage = f"--solvers l2s,ppo-tabu,cpsat-ppo --policy {entry.name}" if entry.problem == "jobshop-improve" else f"--solvers ppo:{entry.name}"
        assert f"{entry.name}  (problem {entry.problem}; use it as {usage})" in result.output
    assert "leaderboard    taillard: mean gap" in result.output


def test_a_policy_loads_by_name():
    ft10 = load_benchmark("ft10")
    by_name = make_solver("jobshop", "ppo:jobshop-default").solve(ft10)
    default = make_solver("jobshop", "ppo").solve(ft10)
    assert validate(ft10, by_name) == []
    assert by_name.makespan(ft10) == default.makespan(ft10)


def test_a_policy_of_another_problem_or_a_rule_with_an_argument_is_refused():
    with pytest.raises(CheckpointError, match="holds a 'socdag' policy, not a 'jobshop' one"):
        make_solver("jobshop", "ppo:socdag-default")
    with pytest.raises(CheckpointError, match="checkpoint 'no-such-policy' not found"):
        make_solver("jobshop", "ppo-sample:no-such-policy")
    with pytest.raises(KeyError, match="solver 'mwkr' takes no ':' argument"):
        make_solver("jobshop", "mwkr:fast")
