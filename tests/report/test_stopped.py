"""A run that stopped before every selected cell ran says so in each report built from it."""

import json
import os
import subprocess
import sys

import pytest

import harness
from harness.record import write_record
from harness.report.build import build_report
from harness.report.merge import merge_runs
from harness.report.stopped import STOPPED_FILE, mark_stopped, merged_stops, read_stopped, stopped_sentence


@pytest.fixture(scope="module")
def record():
    return harness.evaluate("uniform", "crema_d", n_resamples=10)


def test_a_stopped_run_says_so_above_its_tables_in_every_form_of_its_report(tmp_path, record):
    write_record(record, tmp_path)
    mark_stopped(tmp_path, "interrupted, by Ctrl-C or a signal", (1, 4))
    built = build_report(tmp_path)
    said = ("This run stopped before every selected cell ran (interrupted, by Ctrl-C or a signal): "
            "1 of its 4 selected tests finished, and the tables hold only the 1 cell recorded by "
            "then.")
    assert built.stopped.startswith(said)
    assert json.loads(built.path.read_text())["stopped"] == {
        "reason": "interrupted, by Ctrl-C or a signal", "tests_finished": 1, "tests_selected": 4}
    tables = (tmp_path / "tables.md").read_text()
    assert tables.startswith("**This run stopped") and " ".join(tables.split("\n\n")[0].split()) \
        == f"**{built.stopped}**"
    assert f'<p id="stopped" class="stopped">{said}' in (tmp_path / "report.html").read_text()
    done = subprocess.run([sys.executable, "-m", "harness.report", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)  # rebuilt later: the same
    assert done.returncode == 0 and built.stopped in done.stdout


def test_a_run_that_ran_every_cell_says_nothing_of_it(tmp_path, record):
    write_record(record, tmp_path)
    built = build_report(tmp_path)
    assert built.stopped == "" and "stopped" not in json.loads(built.path.read_text())
    assert 'id="stopped"' not in (tmp_path / "report.html").read_text()
    assert "stopped" not in (tmp_path / "tables.md").read_text()


@pytest.mark.parametrize("content", ["{", "[]", '{"reason": 7}', "\xff"])
def test_a_damaged_marker_still_says_the_run_stopped(tmp_path, content):
    (tmp_path / STOPPED_FILE).write_bytes(content.encode("latin-1"))
    assert read_stopped(tmp_path) == {"reason": "unknown: its stopped.json cannot be read"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_for_a_marker_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / STOPPED_FILE)
    assert read_stopped(tmp_path) == {"reason": "unknown: its stopped.json cannot be read"}


@pytest.mark.parametrize("counts", [{"tests_finished": -1, "tests_selected": 3},
                                    {"tests_finished": True, "tests_selected": 3},
                                    {"tests_finished": 1.5, "tests_selected": 3},
                                    {"tests_finished": 1}])
def test_counts_that_are_not_counts_are_left_out(tmp_path, counts):
    (tmp_path / STOPPED_FILE).write_text(json.dumps({"reason": "x" * 400, **counts}))
    assert read_stopped(tmp_path) == {"reason": "x" * 300}
    assert stopped_sentence(read_stopped(tmp_path), 2).startswith(
        f"This run stopped before every selected cell ran ({'x' * 300}): the tables hold only the "
        "2 cells recorded by then.")


def test_a_merge_names_each_run_that_stopped_and_sums_their_counts(tmp_path, record):
    runs = [tmp_path / name for name in ("a", "b", "c")]
    for run in runs:
        write_record(record, run)
    mark_stopped(runs[0], "interrupted, by Ctrl-C or a signal", (3, 5))
    mark_stopped(runs[2], "stopping after 1 failures", (1, 4))
    assert merged_stops(runs) == {
        "reason": "a: interrupted, by Ctrl-C or a signal; c: stopping after 1 failures",
        "tests_finished": 4, "tests_selected": 9}
    assert "4 of its 9 selected tests finished" in merge_runs(tmp_path / "merged", runs).stopped
    mark_stopped(runs[2], "stopping after 1 failures")  # counts unknown in one: none summed
    assert merged_stops(runs) == {
        "reason": "a: interrupted, by Ctrl-C or a signal; c: stopping after 1 failures"}
    assert merge_runs(tmp_path / "merged", runs[1:2]).stopped == ""  # the merged folder's own
    assert not (tmp_path / "merged" / STOPPED_FILE).exists()  # marker goes where none stopped
