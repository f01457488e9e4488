import numpy as np
import pytest

from schedgym.baselines.jobshop import DispatchingRule
from schedgym.envs.jobshop import JobShopSolution, load_benchmark, save_gantt_png, validate


@pytest.fixture
def ft06():
    return load_benchmark("ft06")


@pytest.fixture
def schedule(ft06):
    return DispatchingRule("mwkr").solve(ft06)


def test_a_rule_schedule_is_valid(ft06, schedule):
    assert validate(ft06, schedule) == []
    assert schedule.makespan(ft06) >= 55


def test_validator_names_each_violation(ft06, schedule):
    starts = schedule.start_times.copy()
    starts[0, 1] = starts[0, 0]  # op 1 of job 0 now starts with op 0: precedence broken
    errors = validate(ft06, JobShopSolution("ft06", starts))
    assert any("job 0 op 1 starts" in e for e in errors)

    starts = schedule.start_times.copy()
    j, o = np.argwhere(ft06.machines == 0)[0]
    k, p = np.argwhere(ft06.machines == 0)[1]
    starts[k, p] = starts[j, o]  # two operations at the same time on machine 0
    errors = validate(ft06, JobShopSolution("ft06", starts))
    assert any(e.startswith("machine 0:") and "overlaps" in e for e in errors)

    assert "shape" in validate(ft06, JobShopSolution("ft06", starts[:, :3]))[0]
    starts = schedule.start_times.copy()
    starts[2, 0] = -5
    assert any("< 0" in e for e in validate(ft06, JobShopSolution("ft06", starts)))


def test_validator_checks_downtime(ft06, schedule):
    j, o = 0, 0
    machine = int(ft06.machines[j, o])
    start = int(schedule.start_times[j, o])
    broken = JobShopSolution("ft06", schedule.start_times, machine_downtime=[(machine, start, start + 1)])
    assert any("downtime" in e for e in validate(ft06, broken))


def test_json_round_trip(tmp_path, ft06, schedule):
    path = tmp_path / "s.json"
    schedule.save(path)
    back = JobShopSolution.load(path)
    assert np.array_equal(back.start_times, schedule.start_times) and back.makespan(ft06) == schedule.makespan(ft06)
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(ValueError, match="not a job-shop solution"):
        JobShopSolution.from_json('{"problem": "memmap"}')


def test_gantt_png(tmp_path, ft06, schedule):
    path = tmp_path / "g.png"
    save_gantt_png(ft06, schedule, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_written_files_get_ordinary_permissions(tmp_path, schedule):
    import os
    import stat

    path = tmp_path / "s.json"
    schedule.save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
