"""Run a measurement with another checkout's code, for benchmarks that time this checkout against an older one.

Imported by the benchmark scripts beside it (``python benchmarks/X.py`` puts this folder first on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

from schedgym.atomic import atomic_write_text


def package_view(checkout: Path, folder: Path) -> Path:
    """A folder whose ``schedgym`` package is ``checkout``'s code, laid out as the checkout's ``pyproject.toml``
    installs it (``[tool.setuptools.package-dir]``), to put first on ``PYTHONPATH``."""
    package_dirs = tomllib.loads((checkout / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    package = folder / "schedgym"
    package.mkdir()
    for entry in (checkout / package_dirs["schedgym"]).iterdir():
        (package / entry.name).symlink_to(entry.resolve())
    for name, source in package_dirs.items():
        if name != "schedgym":
            (package / name.removeprefix("schedgym.")).symlink_to((checkout / source).resolve())
    return folder


def measure(code: str, args: list[str], pythonpath: Path | None) -> dict:
    """Run ``code`` (a Python program that prints one JSON object last) with ``args`` in a fresh process, importing
    schedgym from ``pythonpath`` (a :func:`package_view`) or, with None, from this environment."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_in_turns(code: str, args: list[str], pythonpaths: dict[str, Path | None], repeats: int) -> dict[str, list[dict]]:
    """``repeats`` runs of :func:`measure` per entry of ``pythonpaths`` (name -> view), the entries in turns."""
    runs: dict[str, list[dict]] = {name: [] for name in pythonpaths}
    for _ in range(repeats):
        for name, pythonpath in pythonpaths.items():
            runs[name].append(measure(code, args, pythonpath))
    return runs


def write_results(out: Path, rows: list[dict], repeats: int, reference: Path | None) -> None:
    """The rows with the machine, the repeats and the reference checkout, as JSON at ``out`` (atomically)."""
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "repeats": repeats, "reference": str(reference or "")}
    atomic_write_text(out, json.dumps({**meta, "rows": rows}, indent=1))
