"""The HTML report: self-contained, one section per suite with its tables and pictures, and it renders in headless
Chromium (the screenshot is not blank, the tables are in the rendered page)."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from schedgym.bench import BenchRun, run_bench, suite_tables
from schedgym.report import write_report

RUNS = [
    BenchRun("jobshop", "ft06", ["mwkr", "spt"]),
    BenchRun("llmrouting", "azure-conv-moderate-4", ["rr", "jsq-tokens"]),
    BenchRun("memmap", "traced-models", ["greedy-size", "msa"], instances=["resnet-32x4x32-b8-c25", "mlp-1024x2048x2048x2048x1024x512-b32-c50"]),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    result = run_bench(RUNS, progress=False, keep_solutions=True)
    return result, write_report(result, tmp_path_factory.mktemp("report"))


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is needed for this test in CI; .ci/run installs it (apt-get install chromium)")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return path


def headless(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_the_page_is_self_contained_with_a_section_per_suite(report):
    result, path = report
    page = path.read_text()
    assert page.count("<section") == 3
    assert page.count("<caption>ranking</caption>") == 3
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", page)  # nothing outside the file
    images = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,", page)
    assert any("ft06: best schedule" in alt for alt in images)  # Gantt chart
    assert any("the solvers compared" in alt for alt in images)  # latency CDFs
    assert any("resnet-32x4x32-b8-c25: best schedule" in alt for alt in images)  # offset-time picture
    assert sum("quality against wall time" in alt for alt in images) == 3


def test_the_page_renders_in_headless_chromium(report, tmp_path):
    result, path = report
    dom = headless(tmp_path, "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<table>") == sum(len(tables) for tables in suite_tables(result).values())
    assert dom.stdout.count("<caption>ranking</caption>") == 3
    shot = tmp_path / "shot.png"
    run = headless(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", path.as_uri())
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20 and (pixels < 100).mean() > 0.01  # text, tables and pictures, not a blank page
