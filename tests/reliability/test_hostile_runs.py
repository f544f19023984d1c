"""Run options that used to fail only after cells had computed are refused at start-up; long
model names and runs started in the same second keep their files apart."""

import json
import subprocess
import sys
import textwrap

import pytest

GRID = """
from harness.runner import GridConfig, Thresholds
GRID = GridConfig(models=({models}), datasets=("crema_d",), thresholds={{"*": Thresholds(valid_min=1.0)}})

def test_cell(cell, run_cell):
    run_cell(cell)
"""


@pytest.fixture
def grid(pytester):
    def make(models='"uniform",', conftest=""):
        pytester.makepyfile(test_grid=GRID.format(models=models))
        if conftest:
            pytester.makeconftest(textwrap.dedent(conftest))
        return pytester

    return make


@pytest.mark.parametrize(("args", "says"), [
    (["--limit", "0"], "--limit must be at least 1, not 0"),
    (["--limit", "-3"], "--limit must be at least 1, not -3"),
    (["--report-dir", "a-file"],
     "--report-dir a-file cannot be written: something that is not a folder is there"),
    (["--cache-dir", "a-file/cache"], "--cache-dir a-file/cache cannot be written: Not a directory"),
])
def test_bad_run_options_are_refused_before_any_cell_runs(grid, args, says):
    pytester = grid()
    (pytester.path / "a-file").write_text("in the way")
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert result.ret != 0
    output = result.stdout.str() + result.stderr.str()  # a usage error is on stderr
    assert says in output
    assert "_hookexec" not in output and ".py:" not in output  # the reason, not a traceback
    assert not list(pytester.path.rglob("cells/*.json"))


def test_a_gpu_list_naming_no_gpu_is_refused_before_any_cell_runs(grid, monkeypatch):
    monkeypatch.setenv("HARNESS_GPUS", "gpu0,gpu1")
    result = grid().runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    assert "HARNESS_GPUS='gpu0,gpu1': 'gpu0' is not a GPU's index or UUID" in result.stderr.str()


def test_a_model_name_too_long_for_a_file_name_still_writes_its_cell(grid):
    conftest = """
    from harness.baselines import ChanceBaseline
    from harness.models import register

    @register("x" * 300, kind="chance")
    def long_named(**config):
        baseline = ChanceBaseline("uniform")
        return baseline
    """
    pytester = grid(models='"' + "x" * 300 + '",', conftest=conftest)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    [cell] = list((pytester.path / "reports").rglob("cells/*.json"))
    assert len(cell.name.encode()) < 255 and json.loads(cell.read_text())["cell"].startswith("x" * 300)


def test_two_runs_in_the_same_second_get_their_own_folders(grid, record_property):
    pytester = grid()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    runs = [subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(2)]  # started together
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    runs = sorted((pytester.path / "reports").iterdir())
    assert len(runs) == 2 and all(len(list((r / "cells").glob("*.json"))) == 1 for r in runs)
    record_property("reliability", "hostile runs: --limit 0 and -3, a file as --report-dir and "
                                   "--cache-dir refused at start-up, a 300-character model name "
                                   "and two runs in one second kept apart, cells lost 0")
