"""Snapshots keyed by inputs and the regression gate, as a pytest user meets them (pytester)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pytest_plugin.grid_project import grid_project

NO_CACHE = ("-p", "no:cacheprovider")
ROOT = Path(__file__).resolve().parents[2]  # the checkout, where fixtures/ is


@pytest.fixture
def recorded(pytester):
    """The four-cell grid with its snapshots and baselines recorded."""
    grid_project(pytester)
    result = pytester.runpytest_subprocess("--update-baselines", *NO_CACHE)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*harness: recorded 4 baselines in *baselines and their cells' snapshots*"])
    [run] = (pytester.path / "reports").iterdir()  # each record says where its baseline went
    found = json.loads((run / "cells" / "uniform-crema_d-base.json").read_text())["meta"]["regression"]
    assert found["baseline"] == f"recorded {pytester.path / 'baselines' / 'uniform-crema_d-base.json'}"
    return pytester


def snapshot_files(pytester):
    return {p.name: p.read_bytes() for p in (pytester.path / "snapshots" / "test_grid").glob("*.ambr")}


def test_selections_and_options_never_fail_a_passing_run(recorded):
    pytester = recorded
    assert pytester.runpytest_subprocess("--collect-only", "-q", *NO_CACHE).ret == 0
    result = pytester.runpytest_subprocess("--models", "uniform", *NO_CACHE)
    result.assert_outcomes(passed=2)
    assert result.ret == 0 and "unused" not in result.stdout.str()
    assert pytester.runpytest_subprocess("-k", "crema_d", *NO_CACHE).ret == 0
    assert pytester.runpytest_subprocess("--strategies", "base", *NO_CACHE).ret == 0
    for options in (("--limit", "3"), ("--dataset-option", "iemocap.sessions=[1]")):
        result = pytester.runpytest_subprocess(*options, *NO_CACHE)
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines(["*harness: * cells have no snapshot for this configuration*"])
    [*_, run] = sorted((pytester.path / "reports").iterdir())
    record = json.loads((run / "cells" / "uniform-iemocap-base.json").read_text())
    assert record["meta"]["regression"]["snapshot"] == "no snapshot for this configuration"


def with_an_older_revision(path):
    """Add to a cell's snapshot file a copy of its first entry recorded under another revision."""
    text = path.read_text()
    entry = text[text.index("# name: "):text.index("# ---") + len("# ---")]
    path.write_text(text.rstrip("\n") + "\n" + entry.replace("][rev-", "][rev-older-", 1) + "\n")


def test_snapshot_update_on_a_selection_writes_only_the_selected_cells(recorded):
    pytester = recorded
    folder = pytester.path / "snapshots" / "test_grid"
    for cell in ("uniform-iemocap-base", "label-prior-iemocap-base"):
        with_an_older_revision(folder / f"{cell}.ambr")
    before = snapshot_files(pytester)
    result = pytester.runpytest_subprocess("-k", "iemocap", *NO_CACHE)  # checking writes nothing
    result.assert_outcomes(passed=2)
    assert snapshot_files(pytester) == before
    [*_, run] = sorted((pytester.path / "reports").iterdir())
    record = json.loads((run / "cells" / "uniform-iemocap-base.json").read_text())
    assert record["meta"]["regression"]["snapshot"] == "matched"
    result = pytester.runpytest_subprocess("--snapshot-update", "--models", "uniform", "--limit", "3",
                                           *NO_CACHE)
    result.assert_outcomes(passed=2)
    after = snapshot_files(pytester)
    assert set(after) == set(before)  # nothing deleted
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"uniform-crema_d-base.ambr", "uniform-iemocap-base.ambr"}
    text = after["uniform-iemocap-base.ambr"].decode()
    assert text.count("# name: test_cell[uniform-iemocap-base][rev-") == 2  # full corpus and limit 3
    assert "[rev-older-" not in text  # the selected cell's other revision: superseded
    assert "[rev-older-" in after["label-prior-iemocap-base.ambr"].decode()  # another's: kept
    # both configurations of the selected cells now check against their own snapshot
    for options in ((), ("--limit", "3")):
        result = pytester.runpytest_subprocess("--models", "uniform", *options, *NO_CACHE)
        result.assert_outcomes(passed=2)
        assert "no snapshot for this configuration" not in result.stdout.str()


def test_a_changed_output_names_the_metric_it_moved(recorded):
    pytester = recorded
    path = pytester.path / "snapshots" / "test_grid" / "uniform-crema_d-base.ambr"
    text = path.read_text()
    js = text.split("'js': ")[1].split(",")[0]
    path.write_text(text.replace(f"'js': {js},", "'js': 0.1234,"))
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*uniform-crema_d-base: the outputs differ from the snapshot of the "
                                 "same inputs*", f"*js: snapshot 0.1234 -> now {js}*"])

    # a snapshot recorded before the harness computed UAR: its own values still checked
    older = "\n".join(line for line in text.splitlines() if "'uar" not in line) + "\n"
    path.write_text(older)
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*harness: 1 cell matched snapshots recorded before this harness "
                                 "computed uar, uar_untied (compared without them; "
                                 "--snapshot-update adds them)*"])
    path.write_text(older.replace(f"'js': {js},", "'js': 0.1234,"))
    pytester.runpytest_subprocess(*NO_CACHE).assert_outcomes(passed=3, failed=1)
    path.write_text(older)  # --snapshot-update adds the metrics the snapshot predates
    pytester.runpytest_subprocess("--snapshot-update", "-k", "uniform-crema_d",
                                  *NO_CACHE).assert_outcomes(passed=1)
    assert "'uar': " in path.read_text() and "'uar_untied': " in path.read_text()


CRAFTED_GRID = """
from harness.runner import GridConfig, Thresholds
GRID = GridConfig(models=("tiny-qwen2-audio",), datasets=("crema_d",), strategies=("base",),
                  thresholds={"*": Thresholds(valid_min=0.5)})

def test_cell(cell, run_cell, cell_snapshot):
    record = run_cell(cell)
    cell_snapshot.check(record)
"""


def test_a_model_update_is_gated_by_the_paired_bootstrap(pytester, monkeypatch, tmp_path):
    """The README's "Gating a model update", end to end: a worse copy of the tiny model fails the
    gate naming the metrics; recorded as the baseline it passes; the original is then better."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    # in a process of its own: torch imported here would be dropped from sys.modules when
    # pytester restores them, and a later test of this worker importing it again crashes it
    worse = Path(subprocess.run([sys.executable, "-m", "fixtures.worse_tiny_model",
                                 str(tmp_path / "tiny-worse")], capture_output=True, text=True,
                                check=True, cwd=ROOT).stdout.strip())
    pytester.makepyfile(test_grid=CRAFTED_GRID)
    pytester.runpytest_subprocess("--update-baselines", *NO_CACHE).assert_outcomes(passed=1)
    monkeypatch.setenv("TINY_QWEN2_AUDIO_PATH", str(worse))
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*tiny-qwen2-audio-crema_d-base is significantly worse than its baseline:*",
        "*js: baseline 0.43* -> 0.63*, 98% CI of the change [[]+0.*, +0.*[]] on 25 paired items*"])
    assert "snapshot" not in result.stdout.str().split("short test summary")[0].split("FAILURES")[-1]
    pytester.runpytest_subprocess("--update-baselines", *NO_CACHE).assert_outcomes(passed=1)
    pytester.runpytest_subprocess(*NO_CACHE).assert_outcomes(passed=1)
    monkeypatch.delenv("TINY_QWEN2_AUDIO_PATH")
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*harness gate: tiny-qwen2-audio-crema_d-base: model revision "
                                 "sha256:* -> sha256:*: better on js, jsd, bc*"])
