"""A run that stopped before every selected cell ran says so in each report built from it."""

import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.record import write_record
from harness.report.build import build_report
from harness.report.merge import merge_runs
from harness.report.stopped import (
    RUNNING_FILE,
    STOPPED_FILE,
    clear_running,
    mark_running,
    mark_stopped,
    merged_stops,
    read_stopped,
    stopped_sentence,
)

KILLED = ("its session never reached its end: its process was killed (SIGKILL, the out-of-memory "
          "killer, a job's time limit) or its machine stopped")


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


def test_the_cells_that_never_finished_are_named_the_first_five_then_how_many_more(tmp_path):
    names = [f"m-crema_d-s{k}" for k in range(8)]
    mark_stopped(tmp_path, "terminated by SIGTERM", (2, 10), names)
    stop = read_stopped(tmp_path)
    assert stop["unfinished"] == names
    assert stopped_sentence(stop, 2).startswith(
        "This run stopped before every selected cell ran (terminated by SIGTERM): 2 of its 10 "
        "selected tests finished, and the tables hold only the 2 cells recorded by then; not "
        "finished: m-crema_d-s0, m-crema_d-s1, m-crema_d-s2, m-crema_d-s3, m-crema_d-s4 and 3 "
        "more (stopped.json lists them). The same command")
    mark_stopped(tmp_path, "terminated by SIGTERM", (2, 3), names[:1])
    assert "by then; not finished: m-crema_d-s0. The same" in stopped_sentence(
        read_stopped(tmp_path), 2)


@pytest.mark.parametrize("unfinished", ["m-d-s", [1, 2], ["a", None], {"a": 1}, []])
def test_a_list_of_unfinished_cells_that_is_not_names_is_left_out(tmp_path, unfinished):
    (tmp_path / STOPPED_FILE).write_text(json.dumps({
        "reason": "r", "tests_finished": 1, "tests_selected": 3, "unfinished": unfinished}))
    assert read_stopped(tmp_path) == {"reason": "r", "tests_finished": 1, "tests_selected": 3}
    (tmp_path / STOPPED_FILE).write_text(json.dumps({"reason": "r", "unfinished": ["x" * 400]}))
    assert read_stopped(tmp_path) == {"reason": "r", "unfinished": ["x" * 300]}


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
    mark_stopped(runs[0], "interrupted, by Ctrl-C or a signal", (3, 5), ["a1", "a2"])
    mark_stopped(runs[2], "stopping after 1 failures", (1, 4), ["c1"])
    assert merged_stops(runs)["unfinished"] == ["a1", "a2", "c1"]  # shards: disjoint cells
    mark_stopped(runs[2], "stopping after 1 failures")  # counts unknown in one: none summed
    assert merged_stops(runs) == {
        "reason": "a: interrupted, by Ctrl-C or a signal; c: stopping after 1 failures"}
    assert merge_runs(tmp_path / "merged", runs[1:2]).stopped == ""  # the merged folder's own
    assert not (tmp_path / "merged" / STOPPED_FILE).exists()  # marker goes where none stopped


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def end(child: subprocess.Popen) -> None:
    """Kill ``child`` and return once it has ended, not yet reaped (a zombie until waited for)."""
    child.send_signal(signal.SIGKILL)
    if hasattr(os, "waitid"):
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    else:
        child.wait()


def test_a_run_killed_before_its_end_says_so_and_one_still_running_says_that(tmp_path, record):
    """running.json, left where the session never reached its end (nothing ran to write
    stopped.json): its process gone, or alive and this a report of a run in progress."""
    write_record(record, tmp_path)
    mark_running(tmp_path, 5, os.getpid())
    running = build_report(tmp_path)
    assert read_stopped(tmp_path) == {"reason": f"still running: process {os.getpid()} on this host",
                                      "running": True, "tests_selected": 5}
    assert running.stopped == (f"This run had not ended when this report was built (still running: "
                               f"process {os.getpid()} on this host): the tables hold the 1 cell "
                               "recorded by then, of its 5 selected tests. Build the report again "
                               "once it ends.")
    child = sleeper()
    mark_running(tmp_path, 5, child.pid)
    end(child)
    child.wait()
    assert read_stopped(tmp_path) == {"reason": KILLED, "tests_selected": 5}
    assert build_report(tmp_path).stopped.startswith(
        f"This run stopped before every selected cell ran ({KILLED}): 5 tests were selected, and "
        "the tables hold only the 1 cell recorded by then.")
    selected = [record.cell, *(f"m-crema_d-s{k}" for k in range(7))]
    mark_running(tmp_path, 8, child.pid, selected)  # with the cells selected, as a session writes
    assert read_stopped(tmp_path)["selected"] == selected
    built = build_report(tmp_path)  # the selected cells less the one recorded
    assert ("the tables hold only the 1 cell recorded by then; no record of: m-crema_d-s0, "
            "m-crema_d-s1, m-crema_d-s2, m-crema_d-s3, m-crema_d-s4 and 2 more (running.json "
            "lists every selected one; a cell that skipped has none either). The same") in built.stopped
    assert json.loads(built.path.read_text())["stopped"]["unrecorded"] == selected[1:]
    clear_running(tmp_path)  # the session's end
    assert read_stopped(tmp_path) is None and build_report(tmp_path).stopped == ""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc on this system")
def test_a_killed_process_not_yet_reaped_or_a_process_id_taken_again_is_not_the_run(tmp_path):
    child = sleeper()
    try:
        mark_running(tmp_path, 2, child.pid)
        assert read_stopped(tmp_path)["running"]
        end(child)  # a zombie until waited for
        assert read_stopped(tmp_path)["reason"] == KILLED
    finally:
        child.wait()
    said = json.loads((tmp_path / RUNNING_FILE).read_text())
    (tmp_path / RUNNING_FILE).write_text(json.dumps({**said, "pid": os.getpid()}))
    assert read_stopped(tmp_path)["reason"] == KILLED  # this process, started at another time


def test_a_run_on_another_host_may_still_be_running_there(tmp_path):
    (tmp_path / RUNNING_FILE).write_text(json.dumps({"host": "node-7", "pid": 1, "started": None,
                                                     "tests_selected": 3}))
    assert read_stopped(tmp_path) == {
        "reason": "its session had not ended when last seen: still running on node-7, or killed "
                  "there", "tests_selected": 3}


@pytest.mark.parametrize("content", ["{", "[]", "\xff", '{"host": "x", "tests_selected": 3}',
                                     '{"pid": 0}', '{"pid": -1}', '{"pid": "1"}', '{"pid": true}',
                                     '{"pid": 5, "tests_selected": -3}', '{"pid": 5, "host": null}'])
def test_a_damaged_running_marker_still_says_the_run_did_not_end(tmp_path, content):
    """Never a signal sent to a process group (0, -1) nor an overflow (no process is sent one)."""
    if content.startswith('{"pid'):  # that field damaged, the others as written
        content = json.dumps({"host": platform.node(), "started": None, "tests_selected": 3,
                              **json.loads(content)})
    (tmp_path / RUNNING_FILE).write_bytes(content.encode("latin-1"))
    said = {"reason": "its session never reached its end, or has not yet: its running.json "
                      "cannot be read"}
    assert read_stopped(tmp_path) == said


def test_a_process_id_no_process_has_is_a_run_that_was_killed(tmp_path):
    for pid in (99999999999999999999, 4_000_000):  # no such process here
        (tmp_path / RUNNING_FILE).write_text(json.dumps(
            {"host": platform.node(), "pid": pid, "started": None, "tests_selected": 3}))
        assert read_stopped(tmp_path) == {"reason": KILLED, "tests_selected": 3}


def test_a_stop_said_wins_over_a_running_marker_and_a_merge_sums_what_every_run_counts(tmp_path,
                                                                                         record):
    runs = [tmp_path / name for name in ("a", "b")]
    for run in runs:
        write_record(record, run)
    child = sleeper()
    mark_running(runs[0], 4, child.pid)
    end(child)
    child.wait()
    mark_stopped(runs[1], "stopping after 1 failures", (1, 2))
    mark_running(runs[1], 2, os.getpid())  # the session's end died between the two
    assert read_stopped(runs[1])["reason"] == "stopping after 1 failures"
    merged = merged_stops(runs)
    assert merged == {"reason": f"a: {KILLED}; b: stopping after 1 failures", "tests_selected": 6}
    assert "6 tests were selected" in merge_runs(tmp_path / "merged", runs).stopped
