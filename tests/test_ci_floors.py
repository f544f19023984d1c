"""CI's environment of the oldest allowed releases (``.ci/floors.py``) pins every dependency
pyproject.toml states (the api extra's SDKs included), so that each floor it states is one the
suite passed on."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_floors():
    spec = importlib.util.spec_from_file_location("ci_floors", ROOT / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_dependency_the_sdks_and_every_test_requirement_are_pinned_to_their_floors():
    floors = load_floors().floors(ROOT / "pyproject.toml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {r.split(">=")[0] for r in project["dependencies"] + extras["api"] + extras["test"]}
    pinned = {f.split("==")[0] for f in floors}
    assert pinned == names - {"fastapi", "uvicorn", "accelerate", "soxr"}  # these pull in torch
    assert "numpy==1.24.*" in floors and "syrupy==7.0.1" in floors
    assert {"openai", "google-genai"} <= pinned  # the api tests run on the SDKs' floors too
    assert "pytest-xdist==3.5.*" in floors  # the ceiling (<4) dropped, the floor kept


def test_a_requirement_without_a_floor_stops_ci(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["numpy"]\n[project.optional-dependencies]\ntest = []\n')
    with pytest.raises(SystemExit, match="no floor to pin in 'numpy'"):
        load_floors().floors(tmp_path / "pyproject.toml")


def test_the_environments_without_torch_install_the_test_extra_as_stated():
    needs = load_floors().test_needs(ROOT / "pyproject.toml")
    assert "pytest-xdist>=3.5,<4" in needs and "syrupy>=7.0.1" in needs
    assert not any(n.startswith(("fastapi", "uvicorn", "accelerate", "soxr")) for n in needs)

