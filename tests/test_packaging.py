"""A wheel of the project carries the embedded default: installed apart from the sources, it
loads the three mini corpora and the tiny model from any working directory."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = textwrap.dedent("""
    import harness
    from harness.data import load_dataset
    from harness.models import get_model
    print(harness.__file__)
    print(*(len(load_dataset(name)) for name in ("iemocap", "msp_podcast", "crema_d")))
    print(get_model("tiny-qwen2-audio").info.name)
""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built by ``pip wheel .``, installed (without dependencies) into a folder."""
    wheels, target = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("source") / "harness"  # no stale build/ folder of ours
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "reports", ".cache", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True,
                   capture_output=True, timeout=300)
    wheel = next(wheels.glob("harness-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    return target


def test_the_installed_wheel_loads_the_corpora_and_the_tiny_model_from_anywhere(installed, tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin",
                               "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    origin, sizes, model = done.stdout.split("\n")[:3]
    assert Path(origin).is_relative_to(installed)  # not the sources
    assert sizes == "26 28 26" and model == "tiny-qwen2-audio"


def test_the_version_is_defined_once():
    import importlib.metadata

    import harness

    assert importlib.metadata.version("harness") == harness.__version__
    assert "version =" not in (ROOT / "pyproject.toml").read_text().split("[project]")[1].split("[")[0]


def test_the_grid_runs_on_the_installed_wheel(installed, tmp_path):
    """``pytest evals`` from the repository, with the wheel first on the path: the plugin (an
    entry point of the installed wheel) imports the installed package before any conftest."""
    done = subprocess.run([sys.executable, "-m", "pytest", "evals", "-q", "-p", "no:cacheprovider",
                           "-k", "uniform-iemocap", "--report-dir", str(tmp_path / "reports"),
                           "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-2000:]
