"""Replay on the CPU backend: every measured schedule keeps the solution's order per resource, the precedences
with their transfer delays and the release times; bad input is refused with a message that says what to do.
(How close measured is to simulated is a measurement, in benchmarks/, not a test.)"""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from schedgym.cli import app
from schedgym.envs.jobshop import load_benchmark
from schedgym.envs.memmap import MemMapSolution
from schedgym.envs.memmap.solution import SLOW
from schedgym.envs.memmap.suites import resolve_suite as resolve_memmap
from schedgym.envs.socdag import LATENCY_US, PE_TYPES, TASK_TYPES, load_instance
from schedgym.envs.socdag.suites import resolve_suite as resolve_socdag
from schedgym.registry import make_solver
from schedgym.replay.cuda import CHUNK_ITEMS, SOCDAG_LAYOUT, CudaKernelProfile, layout_slots
from schedgym.replay.fidelity import rank_correlation, replay
from schedgym.replay.kernels import KERNEL_KINDS, KernelProfile, calibrate_cpu
from schedgym.replay.memory import OpProgram, replay_mapping
from schedgym.replay.plan import jobshop_plan, socdag_kernel_kinds, socdag_plan

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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no CUDA device")
def test_cuda_without_a_gpu_names_the_cpu_backend():
    ft06 = load_benchmark("ft06")
    solution = make_solver("jobshop", "mwkr").solve(ft06)
    with pytest.raises(RuntimeError, match="replay with --device cpu"):
        replay("jobshop", ft06, solution, device="cuda", profile=PROFILE)
    instance = resolve_memmap("traced-models")[0]
    with pytest.raises(RuntimeError, match="replay with --device cpu"):
        replay_mapping(instance, MemMapSolution(np.full(instance.n_buffers, SLOW)), device="cuda")


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


def test_rank_correlation_ranks_ties_together():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 1, 2], [5, 5, 9]) == pytest.approx(1.0)  # a tie on both sides is no disagreement


def test_socdag_tasks_run_the_kernel_of_their_accelerator():
    kinds = dict(zip(TASK_TYPES, socdag_kernel_kinds(load_instance("wifi_rx"))))
    assert (kinds["fft"], kinds["match_filter"], kinds["viterbi_decoder"], kinds["scrambler"]) == ("fft", "gemm", "reduction", "elementwise")


def test_the_soc_layout_shares_only_the_matrix_accelerators():
    instance = load_instance("wifi_tx")
    types = [instance.soc.pe_type_names[t] for t in instance.soc.pe_types]
    slots = layout_slots(types, SOCDAG_LAYOUT)
    shared = [types[i] for i, (_, share) in enumerate(slots) if share >= 0]
    assert shared == ["mm", "mm"] and len({share for _, share in slots if share >= 0}) == 1
    assert [sms for sms, _ in slots] == [SOCDAG_LAYOUT[t].sms for t in types]


def test_kernel_fits_turn_durations_into_items_and_back(tmp_path):
    profile = CudaKernelProfile({"gemm/core/8": [6.0, 9.5], "fft/accel/8": [4.0, 1.2]}, "test GPU", "test", "by hand")
    for kind, implementation in (("gemm", "core"), ("fft", "accel")):
        per_item = profile.fits[f"{kind}/{implementation}/8"][1]
        for duration_us in (50.0, 700.0, 9000.0):
            items = profile.items_for(kind, implementation, 8, duration_us)
            assert abs(profile.time_us(kind, implementation, 8, items) - duration_us) <= per_item / 2 + profile.fits[f"{kind}/{implementation}/8"][0]
    assert profile.time_us("gemm", "core", 8, CHUNK_ITEMS["gemm"] + 1) == pytest.approx(2 * 6.0 + (CHUNK_ITEMS["gemm"] + 1) * 9.5)
    with pytest.raises(KeyError, match="calibrate with `schedgym calibrate --device cuda`"):
        profile.items_for("reduction", "core", 8, 100.0)
    profile.save(tmp_path / "p.json")
    assert CudaKernelProfile.load(tmp_path / "p.json") == profile
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="is not a CUDA kernel profile"):
        CudaKernelProfile.load(tmp_path / "bad.json")


def write_table(path, table):
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in table]
    path.write_text(json.dumps({"task_type_names": list(TASK_TYPES), "pe_type_names": list(PE_TYPES), "latency_us": rows}))


def test_a_measured_latency_table_replaces_the_hand_written_one(tmp_path):
    write_table(tmp_path / "t.json", 2 * LATENCY_US)
    instances = {i.name: i for i in resolve_socdag(f"socdag-static@{tmp_path / 't.json'}")}
    assert np.array_equal(instances["wifi_tx"].latency_us, 2 * LATENCY_US, equal_nan=True)
    assert instances["wifi_tx"].optimum_us is None  # the proven optimum was for the other table
    assert instances["topcuoglu2002"].latency_us[0, 0] == 14  # other task types keep their own table
    with pytest.raises(ValueError, match="is a table for task types"):
        resolve_socdag(f"topcuoglu2002@{tmp_path / 't.json'}")
    write_table(tmp_path / "short.json", LATENCY_US[:3])
    with pytest.raises(ValueError, match="schedgym calibrate --problem socdag"):
        resolve_socdag(f"wifi_tx@{tmp_path / 'short.json'}")


def test_memory_replay_reads_every_accessed_byte_and_refuses_bad_maps():
    instance = resolve_memmap("traced-models")[0]
    program = OpProgram.of(instance)
    read = sum(count * times for reads in program.reads for _, count, times in reads)
    assert abs(read - instance.access_bytes.sum()) <= 16 * len(instance.access_bytes)
    all_slow = MemMapSolution(np.full(instance.n_buffers, SLOW))
    mapped = make_solver("memmap", "first-fit").solve(instance)
    assert replay_mapping(instance, all_slow, repeats=1) > 0 and replay_mapping(instance, mapped, repeats=1) > 0
    overlapping = MemMapSolution(np.zeros(instance.n_buffers, dtype=np.int64))
    with pytest.raises(ValueError, match="cannot be replayed"):
        replay_mapping(instance, overlapping)
    with pytest.raises(ValueError, match="packing instance"):
        packing = resolve_memmap("minimalloc_A")[0]
        replay_mapping(packing, MemMapSolution(np.zeros(packing.n_buffers, dtype=np.int64)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_replay_keeps_order_and_precedence():
    ft06 = load_benchmark("ft06")
    solution = make_solver("jobshop", "mwkr").solve(ft06)
    report, measured = replay("jobshop", ft06, solution, device="cuda", time_scale=40.0)
    check_measured(jobshop_plan(ft06, solution, 40.0), measured)
    assert abs(report.makespan_error_pct) < 50
    instance = resolve_memmap("traced-models")[0]
    assert replay_mapping(instance, make_solver("memmap", "first-fit").solve(instance), device="cuda", repeats=2) > 0


def test_cli_replays_a_memory_map(tmp_path):
    runner = CliRunner()
    name = resolve_memmap("traced-models")[0].name
    assert runner.invoke(app, ["solve", "memmap", name, "--solver", "msa", "--out", str(tmp_path / "m.json")]).exit_code == 0
    result = runner.invoke(app, ["replay", str(tmp_path / "m.json"), "--problem", "memmap", "--instance", name, "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())["report"]
    assert report["instance"] == name and report["measured_runtime_s"] > 0 and report["modelled_runtime_s"] > 0
