"""Replay on the CPU backend: every measured schedule keeps the solution's order per resource, the precedences
with their transfer delays and the release times; bad input is refused with a message that says what to do.
(How close measured is to simulated is a measurement, in benchmarks/, not a test.)"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from schedgym.cli import app
from schedgym.envs.jobshop import load_benchmark
from schedgym.envs.socdag import load_instance
from schedgym.registry import make_solver
from schedgym.replay.fidelity import replay
from schedgym.replay.kernels import KERNEL_KINDS, KernelProfile, calibrate_cpu
from schedgym.replay.plan import jobshop_plan, socdag_plan

#: a profile with long units, so that the replays below are short
PROFILE = KernelProfile("cpu", {kind: 1000.0 for kind in KERNEL_KINDS}, "test", "set by hand")


def check_measured(plan, measured):
    start, end = np.asarray(measured["start_us"]), np.asarray(measured["end_us"])
    assert np.isfinite(start).all() and (end >= start).all()
    for tasks in plan.order:
        assert all(end[a] <= start[b] for a, b in zip(tasks, tasks[1:]))  # the solution's order, no overlap
    for t, predecessors in enumerate(plan.predecessors):
        assert start[t] >= plan.release_us[t]
        for p, delay_us in predecessors:
            assert start[t] >= end[p] + delay_us - 1.0  # 1 us of clock rounding


def test_calibration_measures_every_kernel_and_round_trips(tmp_path):
    profile = calibrate_cpu(units=3, repeats=2)
    assert set(profile.unit_us) == set(KERNEL_KINDS) and all(v > 0 for v in profile.unit_us.values())
    profile.save(tmp_path / "k.json")
    assert KernelProfile.load(tmp_path / "k.json") == profile


def test_a_malformed_profile_is_refused(tmp_path):
    (tmp_path / "bad.json").write_text('{"device": "cpu"}')
    with pytest.raises(ValueError, match="is not a kernel profile.*schedgym calibrate"):
        KernelProfile.load(tmp_path / "bad.json")


def test_jobshop_replay_keeps_order_and_precedence():
    ft06 = load_benchmark("ft06")
    solution = make_solver("jobshop", "mwkr").solve(ft06)
    report, measured = replay("jobshop", ft06, solution, profile=PROFILE, time_scale=300.0)
    check_measured(jobshop_plan(ft06, solution, 300.0), measured)
    assert report.n_tasks == 36 and report.simulated_makespan_us == solution.makespan(ft06) * 300.0
    assert report.measured_makespan_us == pytest.approx(max(measured["end_us"]))


def test_socdag_replay_keeps_transfers_and_arrivals():
    instance = load_instance("stream-rate40-noise0.2-s0")
    solution = make_solver("socdag", "heft-online").solve(instance)
    report, measured = replay("socdag", instance, solution, profile=PROFILE, time_scale=2.0)
    plan = socdag_plan(instance, solution, 2.0)
    check_measured(plan, measured)
    assert any(delay > 0 for preds in plan.predecessors for _, delay in preds)  # transfers were replayed
    assert report.simulated_mean_job_us > 0 and report.measured_mean_job_us > 0


def test_bad_input_is_refused():
    ft06 = load_benchmark("ft06")
    solution = make_solver("jobshop", "mwkr").solve(ft06)
    broken = make_solver("jobshop", "mwkr").solve(ft06)
    broken.start_times[:] = 0
    with pytest.raises(ValueError, match="not valid for ft06, so it cannot be replayed"):
        replay("jobshop", ft06, broken, profile=PROFILE)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        replay("jobshop", ft06, solution, device="tpu", profile=PROFILE)
    with pytest.raises(RuntimeError, match="replay with --device cpu"):
        replay("jobshop", ft06, solution, device="cuda", profile=PROFILE)


def test_cli_replays_a_solved_instance(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["solve", "jobshop", "ft06", "--solver", "spt", "--out", str(tmp_path / "s.json")]).exit_code == 0
    PROFILE.save(tmp_path / "k.json")
    result = runner.invoke(app, ["replay", str(tmp_path / "s.json"), "--profile", str(tmp_path / "k.json"), "--time-scale", "200", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["report"]["instance"] == "ft06" and len(written["measured"]["start_us"]) == 36
    result = runner.invoke(app, ["replay", str(tmp_path / "missing.json")])
    assert result.exit_code == 1 and "not found; write one with `schedgym solve" in result.output
