"""What ``run_cell`` does around a cell: in process, where progress lines go, how the gate's
verdict fails the test and how the findings reach the record; under pytester, a record that
cannot be written and the cores a local model's cell takes (whole runs: test_grid_plugin.py and
test_regression.py)."""

import contextlib
import re
import types

import pytest

from harness.pytest_plugin import fixtures
from harness.record import CellMetrics, CellRecord, ItemRecord, read_record, write_record
from harness.runner.baseline_file import BaselineError


def a_record(cell: str = "m-d-s") -> CellRecord:
    items = (ItemRecord("i0", (0.5, 0.5)), ItemRecord("i1", (1.0, 0.0)))
    return CellRecord(cell, "m", "d", "s", ("a", "b"), CellMetrics(2, 2, 1.0), 0.0, 0.0, items,
                      {"note": "kept"})


def a_request(run_dir, options=None, reporter=None, capture=None, worker=None):
    plugins = {"terminalreporter": reporter, "capturemanager": capture}
    stash = pytest.Stash()
    stash[fixtures.RUN_DIR] = run_dir
    config = types.SimpleNamespace(
        stash=stash, getoption=lambda name, default=None: (options or {}).get(name, default),
        getini=lambda name: None, pluginmanager=types.SimpleNamespace(get_plugin=plugins.get))
    if worker is not None:  # as xdist gives a worker's session
        config.workerinput = {"workerid": worker, "workercount": 4}
    return types.SimpleNamespace(config=config, node=types.SimpleNamespace(user_properties=[]))


def test_a_worker_s_progress_lines_go_to_its_log_stamped_and_a_full_disk_loses_only_them(
        monkeypatch, tmp_path):
    sink = fixtures._progress_sink(a_request(tmp_path / "run", worker="gw2"))
    sink("cell a 1/2")
    sink("cell a 2/2")
    lines = (tmp_path / "run" / "logs" / "gw2.log").read_text().splitlines()
    assert [line[9:] for line in lines] == ["cell a 1/2", "cell a 2/2"]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", line[:8]) for line in lines)
    (tmp_path / "run" / "logs" / "gw2.log").unlink()
    (tmp_path / "run" / "logs" / "gw2.log").mkdir()  # writing it fails now: no error
    sink("cell a done")
    fixtures._progress_sink(a_request(tmp_path / "run", worker="gw2"))  # its folder is there


def test_without_xdist_progress_lines_go_past_the_capture_to_the_terminal(monkeypatch, tmp_path):
    """A session that is no worker, though a worker that started it handed on its variable."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    written, states = [], []

    @contextlib.contextmanager
    def disabled():
        states.append("off")
        yield
        states.append("on")

    reporter = types.SimpleNamespace(write_line=lambda line: written.append((line, list(states))))
    capture = types.SimpleNamespace(global_and_fixture_disabled=disabled)
    sink = fixtures._progress_sink(a_request(tmp_path, reporter=reporter, capture=capture))
    sink("cell b 1/9")
    assert written == [("cell b 1/9", ["off"])] and states == ["off", "on"]
    assert fixtures._progress_sink(a_request(tmp_path, capture=capture)) is None
    assert fixtures._progress_sink(a_request(tmp_path, reporter=reporter)) is None
    assert not (tmp_path / "logs").exists()


def verdict(failures=(), changes=("js",), updated=False, note=None):
    from harness.runner.gating import MetricChange

    moved = 12 if updated or failures else 0
    changes = tuple(MetricChange(m, 0.1, 0.3, 0.1, 0.3, 40, "worse" if failures else "same",
                                 changed=moved) for m in changes)
    return types.SimpleNamespace(failures=list(failures), changes=changes, model_updated=updated,
                                 summary="m: the summary", inputs_note=note)


class Worker:
    def __init__(self, run_dir, answer=None, fails=None):
        self.run_dir, self.answer, self.fails, self.asked = run_dir, answer, fails, []

    def gate(self, record, folder, tolerance, alpha):
        self.asked.append((record.cell, folder, tolerance, alpha))
        if self.fails:
            raise BaselineError(self.fails)
        return self.answer


def test_a_cell_without_a_baseline_is_not_gated(tmp_path):
    state, request = {}, a_request(tmp_path, {"--gate-tolerance": 0.1, "--gate-alpha": 0.01})
    worker = Worker(tmp_path)
    fixtures._gate(worker, a_record(), tmp_path / "baselines", request, state)
    assert worker.asked == [("m-d-s", tmp_path / "baselines", 0.1, 0.01)]
    assert state == {} and request.node.user_properties == []


def test_a_worse_cell_fails_naming_each_metric_and_what_its_inputs_changed(tmp_path):
    state, request = {}, a_request(tmp_path)
    answer = verdict(["js: 0.1 -> 0.3", "bc: 0.9 -> 0.7"], note="its prompts changed")
    with pytest.raises(pytest.fail.Exception) as failed:
        fixtures._gate(Worker(tmp_path, answer), a_record(), tmp_path, request, state)
    assert str(failed.value) == ("m-d-s is significantly worse than its baseline:\n  js: 0.1 -> 0.3"
                                 "\n  bc: 0.9 -> 0.7\n  its prompts changed (if meant, "
                                 "--update-baselines makes this run the baseline)")
    assert failed.value.pytrace is False  # the message alone, not a traceback of the fixture
    assert state == {"gate": "m: the summary", "gate_failures": answer.failures}
    assert request.node.user_properties == [("harness_gated", "0.05 1 1"),
                                            ("harness_gate", "m: the summary")]


def test_a_cell_that_could_not_be_compared_says_so(tmp_path):
    request = a_request(tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"^m-d-s could not be compared with its "
                                                    r"baseline:\n  not compared: x$"):
        fixtures._gate(Worker(tmp_path, verdict(["not compared: x"], changes=())), a_record(),
                       tmp_path, request, {})


def test_an_updated_model_that_is_not_worse_passes_and_is_noted(tmp_path):
    state, request = {}, a_request(tmp_path)
    fixtures._gate(Worker(tmp_path, verdict(updated=True)), a_record(), tmp_path, request, state)
    assert state == {"gate": "m: the summary", "gate_failures": []}
    assert request.node.user_properties == [("harness_gated", "0.05 1 0"),
                                            ("harness_gate", "m: the summary")]
    request = a_request(tmp_path)
    fixtures._gate(Worker(tmp_path, verdict()), a_record(), tmp_path, request, {})
    # the same model, not worse: nothing to say but that it was gated, its scores unmoved
    assert request.node.user_properties == [("harness_gated", "0.05 0 0")]


def test_a_baseline_that_cannot_be_used_fails_the_cell_saying_why(tmp_path):
    state = {}
    with pytest.raises(pytest.fail.Exception, match=r"^m-d-s: its baseline cannot be used: "
                                                    r"truncated JSON$") as failed:
        fixtures._gate(Worker(tmp_path, fails="truncated JSON"), a_record(), tmp_path,
                       a_request(tmp_path), state)
    assert failed.value.pytrace is False
    assert state == {"gate": "baseline unusable: truncated JSON",
                     "gate_failures": ["truncated JSON"]}


def test_the_findings_are_added_to_the_record_and_its_items_kept(tmp_path):
    record = a_record()
    path = write_record(record, tmp_path)
    items = path.with_name("m-d-s.items.jsonl")
    before = items.read_bytes() if items.exists() else None
    state = {"record": record, "path": path, "gate": "m: better on js", "gate_failures": [],
             "snapshot": "matched", "other": "not a finding"}
    fixtures._note_regression(types.SimpleNamespace(run_dir=tmp_path), state)
    again = read_record(path)
    assert again.meta == {"note": "kept", "regression": {
        "gate": "m: better on js", "gate_failures": [], "snapshot": "matched"}}
    assert again.items == record.items
    assert (items.read_bytes() if items.exists() else None) == before


def test_without_findings_or_a_record_nothing_is_rewritten(tmp_path):
    record = a_record()
    path = write_record(record, tmp_path)
    inode = path.stat().st_ino  # a rewrite replaces the file (atomically): another inode
    fixtures._note_regression(types.SimpleNamespace(run_dir=tmp_path),
                              {"record": record, "path": path})
    fixtures._note_regression(types.SimpleNamespace(run_dir=tmp_path), {"gate": "x"})
    assert read_record(path).meta == {"note": "kept"} and path.stat().st_ino == inode
    assert not (tmp_path / "cells" / "x.json").exists()


def test_findings_that_cannot_be_written_leave_the_record_and_warn(tmp_path):
    record = a_record()
    path = write_record(record, tmp_path)
    worker = types.SimpleNamespace(run_dir=tmp_path / "gone" / "file")
    (tmp_path / "gone").write_text("")  # a file where the run's folder should be
    with pytest.warns(UserWarning, match=r"^m-d-s: the gate's and the snapshot's findings could "
                                         r"not be added to its record .*m-d-s\.json: Not a "
                                         r"directory$"):
        fixtures._note_regression(worker, {"record": record, "path": path, "snapshot": "new"})
    assert read_record(path).meta == {"note": "kept"}


def test_a_record_that_cannot_be_written_fails_its_cell_saying_so_without_a_traceback(pytester):
    from tests.pytest_plugin.grid_project import grid_project

    grid_project(pytester, conftest="""
        import harness.runner.worker

        def full(record, run_dir):
            raise OSError(28, "No space left on device")

        harness.runner.worker.write_record = full
    """)
    result = pytester.runpytest_subprocess("-k", "uniform-crema_d", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*uniform-crema_d-base: computed, but its record could not be "
                                 "written in *cells: No space left on device"])
    out = result.stdout.str()  # the message alone: no code of the fixture or the conftest
    assert "pytest.fail(" not in out and "raise OSError" not in out and "Traceback" not in out


def test_under_xdist_only_a_local_model_s_cell_takes_the_cores_of_the_cells_running(pytester):
    """Its worker marks it running in ``<run>/logs/.running`` while it computes; a chance
    baseline's cell takes no share."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytester.makeconftest("""
        import os

        import harness.pytest_plugin.fixtures as fixtures

        mine = fixtures.cores_while_running

        def noted(folder, worker):
            cell = os.environ["PYTEST_CURRENT_TEST"].split("[")[1].split("]")[0]
            with open(f"shared-{worker}.txt", "a") as f:
                f.write(f"{cell} {folder.relative_to(folder.parents[2])}\\n")
            return mine(folder, worker)

        fixtures.cores_while_running = noted
    """)
    pytester.makepyfile(test_grid="""
        from harness.runner import GridConfig
        GRID = GridConfig(models=("tiny-qwen2-audio", "uniform"), datasets=("crema_d",),
                          strategies=("base",), limit=2)

        def test_cell(cell, run_cell):
            run_cell(cell)
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    [shared] = [p.read_text().split() for p in pytester.path.glob("shared-*.txt")]
    [run] = (pytester.path / "reports").iterdir()
    assert shared == ["tiny-qwen2-audio-crema_d-base", f"{run.name}/logs/.running"]
    assert not any((run / "logs" / ".running").iterdir())  # no mark left once it is done


def test_a_process_that_ran_cells_collects_its_garbage_then_freezes_the_rest_at_exit(
        monkeypatch, tmp_path):
    """Registered once, however many grid workers start; at exit, garbage in reference cycles is
    collected first (its finalizers run: a file is flushed), and only what is left is frozen,
    so that the interpreter's own collections at its end skip it."""
    import atexit
    import gc

    registered = []
    monkeypatch.setattr(atexit, "register", registered.append)
    fixtures._end_quickly.cache_clear()
    monkeypatch.setattr(fixtures, "run_folder", lambda config, name: tmp_path / name)
    monkeypatch.setattr(fixtures, "corpus_roots", lambda config: {})
    for run_dir in (tmp_path / "a", tmp_path / "b"):  # the session fixture, as two sessions
        next(fixtures.grid_worker.__wrapped__(a_request(run_dir))).close()
    [at_exit] = registered

    finalized = []

    class Cyclic:
        def __del__(self):
            finalized.append(True)

    cycle = Cyclic()
    cycle.me = cycle
    del cycle
    enabled = gc.isenabled()
    gc.disable()  # only the registered function may collect it
    try:
        at_exit()
        assert finalized == [True]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
        fixtures._end_quickly.cache_clear()  # this process registers its own when it needs to


@pytest.mark.parametrize(("nodeid", "cell"), [
    ("evals/test_grid.py::test_cell[tiny-qwen2-audio-iemocap-base]", "tiny-qwen2-audio-iemocap-base"),
    ("evals/test_grid.py::test_cell[openai-compatible:a::b[1]-crema_d-bon]@model",  # xdist's suffix
     "openai-compatible:a::b[1]-crema_d-bon"),
    ("tests/test_x.py::TestY::test_z", "test_z")])
def test_a_cell_is_named_by_its_test_s_parameters_whatever_its_model_s_name_holds(nodeid, cell):
    assert fixtures.cell_id_of(nodeid) == cell
