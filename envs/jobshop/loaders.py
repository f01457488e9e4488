"""Readers and writers for job-shop instances: the shipped benchmarks, OR-Library text and Taillard's format.

OR-Library format (machine ids 0-based)::

    # optional comment lines
    <n_jobs> <n_machines>
    <machine> <duration> <machine> <duration> ...      one line per job, n_machines pairs

Taillard format (machine ids 1-based; the header line may carry seeds and bounds after the two counts)::

    <n_jobs> <n_machines> [time seed] [machine seed] [upper bound] [lower bound]
    Times
    <n_jobs lines of n_machines durations>
    Machines
    <n_jobs lines of n_machines machine ids, 1..n_machines>
"""

from __future__ import annotations

import functools
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from schedgym.envs.errors import InstanceFormatError
from schedgym.envs.jobshop.instance import JobShopInstance

_DATA_FILES = ("benchmark_instances.json", "dmu_instances.json")


@functools.cache
def _benchmark_table() -> dict[str, dict]:
    table: dict[str, dict] = {}
    data_dir = resources.files("schedgym.envs.jobshop") / "data"
    for file_name in _DATA_FILES:
        table.update(json.loads((data_dir / file_name).read_text()))
    return table


def benchmark_names() -> list[str]:
    """Names of every shipped benchmark instance, in file order (abz, ft, la, orb, swv, ta, yn, dmu)."""
    return list(_benchmark_table())


def load_benchmark(name: str) -> JobShopInstance:
    """Load a shipped benchmark instance (``ta01``, ``dmu42``, ``ft10``...) with its bounds."""
    table = _benchmark_table()
    if name not in table:
        raise KeyError(f"unknown job-shop instance {name!r}; `schedgym list` shows the suites, or pass a file path")
    record = table[name]
    meta = record.get("metadata", {})
    return JobShopInstance(
        name=name,
        machines=np.array(record["machines_matrix"]),
        durations=np.array(record["duration_matrix"]),
        optimum=meta.get("optimum"),
        lower_bound=meta.get("lower_bound"),
        upper_bound=meta.get("upper_bound"),
        reference=meta.get("reference", ""),
    )


def _content_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-blank line that is not a ``#`` comment."""
    return [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip() and not s.lstrip().startswith("#")]


def _ints(path: str, line_no: int, line: str, what: str) -> list[int]:
    values = []
    for token in line.split():
        try:
            values.append(int(token))
        except ValueError:
            raise InstanceFormatError(path, line_no, f"{what}: {token!r} is not an integer", "write whole numbers only") from None
    return values


def _header(path: str, lines: list[tuple[int, str]], fmt: str) -> tuple[int, int]:
    if not lines:
        raise InstanceFormatError(path, None, "the file holds no instance", f"start with a line '<n_jobs> <n_machines>' ({fmt} format)")
    line_no, line = lines[0]
    values = _ints(path, line_no, line, "header")
    if len(values) < 2 or values[0] <= 0 or values[1] <= 0:
        raise InstanceFormatError(path, line_no, f"bad header {line!r}", "the first line must be '<n_jobs> <n_machines>' with both > 0")
    return values[0], values[1]


def _check_values(path: str, line_no: int, durations: list[int], machines: list[int], n_machines: int, base: int) -> None:
    for d in durations:
        if d < 0:
            raise InstanceFormatError(path, line_no, f"duration {d} is negative", "every processing time must be >= 0")
    for m in machines:
        if not base <= m < n_machines + base:
            raise InstanceFormatError(
                path, line_no, f"machine id {m} is out of range", f"machine ids must lie in {base}..{n_machines - 1 + base}"
            )


def parse_orlib(text: str, path: str = "<string>", name: str | None = None) -> JobShopInstance:
    """Parse the OR-Library text format (see the module docstring)."""
    lines = _content_lines(text)
    n_jobs, n_machines = _header(path, lines, "OR-Library")
    job_lines = lines[1:]
    if len(job_lines) != n_jobs:
        last = job_lines[-1][0] if job_lines else lines[0][0]
        raise InstanceFormatError(path, last, f"found {len(job_lines)} job lines, the header says {n_jobs}", "give one line per job")
    machines, durations = [], []
    for line_no, line in job_lines:
        values = _ints(path, line_no, line, "job line")
        if len(values) != 2 * n_machines:
            raise InstanceFormatError(
                path, line_no, f"found {len(values)} numbers, expected {2 * n_machines}", f"give {n_machines} '<machine> <duration>' pairs per job"
            )
        _check_values(path, line_no, values[1::2], values[0::2], n_machines, base=0)
        machines.append(values[0::2])
        durations.append(values[1::2])
    return JobShopInstance(name or Path(path).stem, np.array(machines), np.array(durations))


def parse_taillard(text: str, path: str = "<string>", name: str | None = None) -> JobShopInstance:
    """Parse Taillard's two-matrix format (see the module docstring)."""
    lines = _content_lines(text)
    n_jobs, n_machines = _header(path, lines, "Taillard")
    header_values = _ints(path, lines[0][0], lines[0][1], "header")
    labels = [i for i, (_, s) in enumerate(lines) if s.lower().startswith(("times", "machines"))]
    if len(labels) != 2 or not lines[labels[0]][1].lower().startswith("times"):
        raise InstanceFormatError(path, None, "expected a 'Times' block followed by a 'Machines' block", "use the Taillard layout of the module docstring")
    blocks = []
    for start, end in ((labels[0] + 1, labels[1]), (labels[1] + 1, len(lines))):
        rows = lines[start:end]
        if len(rows) != n_jobs:
            at = rows[-1][0] if rows else lines[start - 1][0]
            raise InstanceFormatError(path, at, f"block '{lines[start - 1][1]}' has {len(rows)} rows, the header says {n_jobs}", "give one row per job")
        block = []
        for line_no, line in rows:
            values = _ints(path, line_no, line, "matrix row")
            if len(values) != n_machines:
                raise InstanceFormatError(path, line_no, f"found {len(values)} numbers, expected {n_machines}", "give one number per machine")
            block.append((line_no, values))
        blocks.append(block)
    for (line_no, durations), (line_no_m, machines) in zip(*blocks):
        _check_values(path, line_no, durations, [], n_machines, base=1)
        _check_values(path, line_no_m, [1], machines, n_machines, base=1)
    upper = header_values[4] if len(header_values) >= 6 else None
    lower = header_values[5] if len(header_values) >= 6 else None
    return JobShopInstance(
        name or Path(path).stem,
        machines=np.array([row for _, row in blocks[1]]) - 1,
        durations=np.array([row for _, row in blocks[0]]),
        lower_bound=lower,
        upper_bound=upper,
        optimum=upper if upper is not None and upper == lower else None,
    )


def read_instance_file(path: str | os.PathLike) -> JobShopInstance:
    """Read an instance file in OR-Library or Taillard format (detected by a 'Times' line)."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InstanceFormatError(path, None, f"cannot read the file ({exc.strerror})", "check the path") from None
    is_taillard = any(s.lower().startswith("times") for _, s in _content_lines(text))
    return parse_taillard(text, path) if is_taillard else parse_orlib(text, path)


def load_instance(name_or_path: str | os.PathLike) -> JobShopInstance:
    """A shipped benchmark by name, or an instance file in either format by path."""
    key = str(name_or_path)
    if key in _benchmark_table():
        return load_benchmark(key)
    if os.path.exists(key):
        return read_instance_file(key)
    raise KeyError(f"{key!r} is neither a shipped job-shop instance nor an existing file; `schedgym list` shows the suites")


def to_orlib_text(instance: JobShopInstance) -> str:
    """The instance in OR-Library format (with a comment line holding its name)."""
    rows = [f"# {instance.name}", f"{instance.n_jobs} {instance.n_machines}"]
    for machines, durations in zip(instance.machines, instance.durations):
        rows.append(" ".join(f"{m} {d}" for m, d in zip(machines, durations)))
    return "\n".join(rows) + "\n"


def to_taillard_text(instance: JobShopInstance) -> str:
    """The instance in Taillard's two-matrix format (machine ids 1-based)."""
    rows = [f"{instance.n_jobs} {instance.n_machines}", "Times"]
    rows += [" ".join(map(str, r)) for r in instance.durations]
    rows.append("Machines")
    rows += [" ".join(str(m + 1) for m in r) for r in instance.machines]
    return "\n".join(rows) + "\n"
