"""The folders envs/ graphs/ agents/ baselines/ replay/ install as schedgym.* and nothing else lands top-level."""

import subprocess
import sys
import zipfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("envs", "graphs", "agents", "baselines", "replay")


def test_installed_package_has_every_subsystem():
    import schedgym

    for name in SUBPACKAGES:
        module = __import__(f"schedgym.{name}", fromlist=["_"])
        assert module.__name__ == f"schedgym.{name}"
    assert Path(schedgym.__file__).parent.name == "schedgym"


def test_wheel_holds_only_the_schedgym_namespace(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("schedgym-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"schedgym", next(n for n in top_level if n.endswith(".dist-info"))}
    for name in SUBPACKAGES:
        assert f"schedgym/{name}/__init__.py" in names
    assert "schedgym/envs/jobshop/data/benchmark_instances.json" in names
    assert "schedgym/envs/jobshop/data/README.md" in names
    assert "schedgym/agents/policies/jobshop-default.zip" in names


def test_editable_install_maps_the_folders(tmp_path):
    prefix = tmp_path / "prefix"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--ignore-installed", "--prefix", str(prefix), "-e", str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    site_dir = next(prefix.glob("lib/python*/site-packages"))
    assert not {p.name for p in site_dir.iterdir()} & set(SUBPACKAGES)
    dependencies = next(p for p in sys.path if p.endswith("site-packages"))
    code = (
        # the dependencies (their .pth files unread), then the editable install, whose finder is moved to the front so
        # that it (not a regular install of schedgym that may sit beside the dependencies) answers
        f"import site, sys; sys.path.append({dependencies!r}); site.addsitedir({str(site_dir)!r});"
        "sys.meta_path.insert(0, sys.meta_path.pop());"
        "import schedgym.envs.jobshop, schedgym.graphs, schedgym.agents, schedgym.baselines, schedgym.replay, importlib.util;"
        "print(schedgym.envs.jobshop.__file__);"
        "assert importlib.util.find_spec('envs') is None and importlib.util.find_spec('baselines') is None"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith(str(REPO / "envs"))


def test_plain_import_registers_every_env_id(tmp_path):
    """``import schedgym`` alone (a fresh interpreter, no subpackage imported) makes every env id known to Gymnasium.

    The interpreter runs outside the checkout, whose top-level ``schedgym/`` folder would otherwise shadow the installed
    package (a regular install maps ``envs/`` to ``schedgym.envs``; the bare folder does not).
    """
    code = (
        "import gymnasium as gym, schedgym, sys;"
        "missing = [i for i in schedgym.ENV_IDS.values() if i not in gym.registry];"
        "assert not missing, missing;"
        "env = gym.make('schedgym/JobShop-v0', instances='ft06');"
        "obs, info = env.reset(seed=0);"
        "print(info['instance'], 'schedgym.envs.jobshop.env' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ft06", "True"]
