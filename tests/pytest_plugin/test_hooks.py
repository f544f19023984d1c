"""The plugin's hooks called in process with stand-ins for pytest's objects: the marks a cell
gets, the plans collected, when a run of skipped cells does not pass, when the report is built
and what the terminal summary says (whole runs: test_grid_plugin.py, under pytester)."""

import os
import types

import pytest

import harness.pytest_plugin as plugin
from harness.pytest_plugin.fixtures import PLANS, RUN_DIR
from harness.record import CellMetrics, CellRecord, ItemRecord, write_record
from harness.report.build import BuiltReport
from harness.runner import Cell


def a_config(run_dir=None, options=None, reporter=None, worker=False, **stashed):
    stash = pytest.Stash()
    if run_dir is not None:
        stash[RUN_DIR] = run_dir
    for key, value in stashed.items():
        stash[getattr(plugin, key)] = value
    config = types.SimpleNamespace(
        stash=stash, getoption=lambda name, default=None: (options or {}).get(name, default),
        getvalue=lambda name: (options or {}).get(name), getini=lambda name: None,
        pluginmanager=types.SimpleNamespace(
            get_plugin=lambda name: reporter if name == "terminalreporter" else None))
    if worker:
        config.workerinput = {}
    return config


class Reporter:
    def __init__(self, stats=None):
        self.stats, self.lines, self.sections = stats or {}, [], []

    def write_line(self, line, **markup):
        self.lines.append((line, markup))

    def section(self, title):
        self.sections.append(title)


def test_a_cell_is_marked_by_its_kind():
    def marks(model):
        return [m.name for m in plugin._marks(Cell(model, "iemocap", "base"))]

    assert marks("gpt-4o") == ["cell", "api"]
    assert marks("qwen2-audio-7b") == ["cell", "gpu", "slow"]
    assert marks("tiny-qwen2-audio") == ["cell"] and marks("uniform") == ["cell"]


def test_the_scheduler_is_the_harness_s_only_under_loadgroup():
    scheduler = plugin.pytest_xdist_make_scheduler(a_config(options={
        "dist": "loadgroup", "tx": ["2*popen"], "--group-by": "model"}), None)
    assert scheduler._split_scope("e/t.py::test_cell[m-iemocap-base]") == "m"
    assert plugin.pytest_xdist_make_scheduler(a_config(options={"dist": "load"}), None) is None


def test_each_worker_writes_into_the_controller_s_run_folder(tmp_path):
    node = types.SimpleNamespace(config=a_config(tmp_path / "run"), workerinput={})
    plugin.pytest_configure_node(node)
    assert node.workerinput == {"harness_run_dir": str(tmp_path / "run"),
                                "harness_controller_pid": os.getpid()}  # named in running.json


def item(model, dataset, strategy):
    cell = Cell(model, dataset, strategy)
    return types.SimpleNamespace(callspec=types.SimpleNamespace(params={"cell": cell}),
                                 nodeid=f"evals/test_grid.py::test_cell[{cell.id}]")


def test_a_plan_is_collected_per_model_and_corpus_of_the_selected_cells():
    items = [item("gpt-4o", "iemocap", "base"), item("gpt-4o", "iemocap", "bon"),
             item("gpt-4o", "crema_d", "cot"),
             item("uniform", "iemocap", "base"), types.SimpleNamespace(nodeid="t.py::test_x"),
             types.SimpleNamespace(callspec=types.SimpleNamespace(params={"cell": "not a cell"}),
                                   nodeid="t.py::test_y[not a cell]")]
    config = a_config(options={"--plan": "on"})
    plugin.pytest_collection_finish(types.SimpleNamespace(config=config, items=items))
    assert config.stash[PLANS] == {("gpt-4o", "iemocap"): ("base", "bon"),
                                   ("gpt-4o", "crema_d"): ("cot",)}
    assert config.stash[plugin.SELECTED] == tuple(i.nodeid for i in items)  # kept for a stop
    config = a_config(options={"--plan": "off"})
    plugin.pytest_collection_finish(types.SimpleNamespace(config=config, items=items))
    assert PLANS not in config.stash


def skipped(cell=True):
    return types.SimpleNamespace(keywords={"cell": 1} if cell else {"test_x": 1})


@pytest.mark.parametrize(("stats", "only_skipped"), [
    ({"skipped": [skipped(), skipped()], "deselected": [1], "": [1], "warnings": [1]}, True),
    ({"skipped": [skipped()], "passed": [1]}, False),
    ({"skipped": [skipped(), skipped(cell=False)]}, False),
    ({}, False),
])
def test_a_run_whose_every_test_is_a_skipped_cell_does_not_pass(stats, only_skipped):
    config = a_config(reporter=Reporter(stats))
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session)
    expected = pytest.ExitCode.NO_TESTS_COLLECTED if only_skipped else pytest.ExitCode.OK
    assert session.exitstatus == expected
    assert config.stash.get(plugin.ONLY_SKIPPED, 0) == (2 if only_skipped else 0)


def test_a_worker_or_a_run_without_a_reporter_is_never_judged_skipped():
    stats = {"skipped": [skipped()]}
    assert not plugin._only_skipped_cells(a_config(reporter=Reporter(stats), worker=True))
    assert not plugin._only_skipped_cells(a_config())


def a_run(tmp_path, cells=("m-iemocap-base",)):
    run = tmp_path / "run"
    for cell in cells:
        model, dataset, strategy = cell.split("-")
        items = (ItemRecord("i0", (0.5, 0.5)), ItemRecord("i1", (1.0, 0.0)))
        write_record(CellRecord(cell, model, dataset, strategy, ("a", "b"), CellMetrics(2, 2, 1.0),
                                0.0, 0.0, items, {}), run)
    return run


def test_the_controller_builds_the_report_from_the_records(tmp_path):
    run = a_run(tmp_path)
    config = a_config(run, reporter=Reporter())
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK, shouldfail=False,
                                    shouldstop=False, testscollected=0)
    plugin.pytest_sessionfinish(session)
    assert config.stash[plugin.REPORT].path == run / "report.json" and (run / "report.json").is_file()
    assert session.exitstatus == pytest.ExitCode.OK


@pytest.mark.parametrize("worker", [True, False])
def test_no_report_on_a_worker_or_before_any_cell_wrote(tmp_path, worker):
    run = a_run(tmp_path) if worker else tmp_path / "empty"
    config = a_config(run, worker=worker)
    plugin.pytest_sessionfinish(types.SimpleNamespace(config=config, exitstatus=1))
    assert plugin.REPORT not in config.stash and not (run / "report.json").exists()


def test_a_file_in_cells_that_is_no_record_fails_a_passing_run(tmp_path):
    run = a_run(tmp_path)
    (run / "cells" / "junk.json").write_text("{not json")
    config = a_config(run)
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert [p for p, _ in config.stash[plugin.REPORT].bad_cells] == [str(run / "cells" / "junk.json")]


def test_a_report_that_fails_to_build_fails_the_run_and_keeps_why(tmp_path, monkeypatch):
    import harness.report.build

    def broken(run_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.report.build, "build_report", broken)
    config = a_config(a_run(tmp_path))
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert config.stash[plugin.REPORT_FAILED] == "OSError: [Errno 28] No space left on device"


def summary(config, reporter):
    plugin.pytest_terminal_summary(reporter, 0, config)
    return [line for line, _ in reporter.lines]


def test_the_summary_names_the_report_its_results_and_the_files_left_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = BuiltReport(tmp_path / "run" / "report.json", bad_cells=(("x.json", "x.json: truncated"),),
                        results=("m  js 0.1",))
    reporter = Reporter()
    lines = summary(a_config(tmp_path / "run", REPORT=built), reporter)
    assert lines == ["m  js 0.1", "harness report: run/report.json (tables: run/tables.md; page: "
                     "run/report.html)", "harness report: bad cell file left out: x.json: truncated"]
    assert reporter.sections == ["harness results"] and reporter.lines[-1][1] == {"red": True}
    reporter = Reporter()
    lines = summary(a_config(tmp_path / "run", options={"verbose": -1}, REPORT=built), reporter)
    assert lines[0].startswith("harness report: run/report.json") and reporter.sections == []


def test_the_summary_says_why_no_report_was_built_and_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reporter = Reporter()
    [line] = summary(a_config(tmp_path / "run", REPORT_FAILED="OSError: " + "x" * 400), reporter)
    assert line == (f"harness report: not built (OSError: {'x' * 291}); every cell's record is in "
                    "run/cells: python -m harness.report run builds it again")
    assert reporter.lines[0][1] == {"red": True}


def test_the_summary_says_a_run_of_skipped_cells_evaluated_nothing(tmp_path):
    reporter = Reporter()
    [line] = summary(a_config(tmp_path, ONLY_SKIPPED=3), reporter)
    assert line.startswith("harness: none of the 3 selected cells ran") and "exit code 5" in line
    assert reporter.lines[0][1] == {"red": True}
    assert summary(a_config(tmp_path), Reporter()) == []


def test_configure_names_the_run_folder_and_a_worker_takes_the_controller_s(pytester, monkeypatch):
    import os
    import re

    monkeypatch.chdir(pytester.path)
    pytester.makeini("[pytest]\nharness_report_dir = out\n")
    config = pytester.parseconfig("-p", "no:cacheprovider")
    plugin.pytest_configure(config)
    run = config.stash[RUN_DIR]
    assert run.parent == pytester.path / "out" and not run.exists()
    assert re.fullmatch(rf"\d{{8}}-\d{{6}}-{os.getpid()}", run.name)
    assert any(line.startswith("cell: ") for line in config.getini("markers"))
    config = pytester.parseconfig("-p", "no:cacheprovider")
    config.workerinput = {"harness_run_dir": "/runs/r1"}
    plugin.pytest_configure(config)
    assert str(config.stash[RUN_DIR]) == "/runs/r1"
    config = pytester.parseconfig("--gate-alpha", "0.9", "-p", "no:cacheprovider")
    with pytest.raises(pytest.UsageError, match="^--gate-alpha must be"):  # checked first
        plugin.pytest_configure(config)


class Metafunc:
    def __init__(self, config, grid=None, fixtures=("cell",)):
        self.config, self.fixturenames, self.params = config, list(fixtures), None
        self.module = types.SimpleNamespace(**({} if grid is None else {"GRID": grid}))

    def parametrize(self, name, params):
        self.params = (name, params)


def test_a_grid_module_s_cells_are_parametrized_and_the_grid_started_once(pytester, monkeypatch):
    from harness.runner import GridConfig

    monkeypatch.chdir(pytester.path)
    started = []
    monkeypatch.setattr(plugin, "share_cores", lambda workers: started.append(f"cores/{workers}"))
    monkeypatch.setattr(plugin, "pin_gpu", started.append)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")  # handed on by a worker: not this session's
    config = pytester.parseconfig("-p", "no:cacheprovider", "--strategies", "base,cot")
    config.workerinput = {"workerid": "gw3", "workercount": 4}  # as xdist gives a worker's
    grid = GridConfig(models=("gpt-4o", "uniform"), datasets=("crema_d",))
    metafunc = Metafunc(config, grid)
    plugin.pytest_generate_tests(metafunc)
    name, params = metafunc.params
    assert name == "cell" and [p.id for p in params] == [
        "gpt-4o-crema_d-base", "gpt-4o-crema_d-cot", "uniform-crema_d-base"]
    assert [m.name for m in params[0].marks] == ["cell", "api"]
    assert config.stash[plugin.STARTED] and started == ["gw3", "cores/4"]
    assert (pytester.path / ".cache" / "harness" / "generations.sqlite").is_file()
    plugin.pytest_generate_tests(Metafunc(config, grid))
    assert started == ["gw3", "cores/4"]  # the second grid module starts nothing again
    for other in (Metafunc(config), Metafunc(config, grid, fixtures=("x",))):
        plugin.pytest_generate_tests(other)
        assert other.params is None


def test_a_grid_module_s_mistake_is_a_collection_error_without_a_traceback(pytester, monkeypatch):
    from harness.runner import GridConfig

    monkeypatch.chdir(pytester.path)
    config = pytester.parseconfig("-p", "no:cacheprovider")
    with pytest.raises(pytest.Collector.CollectError, match="^unknown model 'gpt4o'") as raised:
        plugin.pytest_generate_tests(Metafunc(config, GridConfig(models=("gpt4o",))))
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_controller_follows_the_workers_logs_only_under_xdist(tmp_path):
    config = a_config(tmp_path, options={"numprocesses": 2}, reporter=Reporter())
    plugin.pytest_sessionstart(types.SimpleNamespace(config=config))
    follower = config.stash[plugin.FOLLOWER]
    plugin.pytest_sessionfinish(types.SimpleNamespace(config=config, exitstatus=0))
    assert not follower._thread.is_alive()
    for config in (a_config(tmp_path, reporter=Reporter()),
                   a_config(tmp_path, options={"numprocesses": 2}, reporter=Reporter(), worker=True),
                   a_config(tmp_path, options={"numprocesses": 2})):
        plugin.pytest_sessionstart(types.SimpleNamespace(config=config))
        assert plugin.FOLLOWER not in config.stash


def test_only_this_shard_s_cells_are_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(plugin, "select_shard", lambda *args: calls.append(args))
    config, items = a_config(options={"--shard": "2/3"}), []
    plugin.pytest_collection_modifyitems(config, items)
    plugin.pytest_collection_modifyitems(a_config(), items)
    assert calls == [(config, items, "2/3")]


def test_the_summary_says_what_the_gate_found():
    report = types.SimpleNamespace(when="call", nodeid="e/t.py::test_cell[m-d-s]",
                                   user_properties=[("harness_gate", "m: better on js")])
    lines = summary(a_config(), Reporter({"passed": [report]}))
    assert len(lines) == 1 and "m: better on js" in lines[0]


def test_the_grid_runs_where_xdist_is_not_loaded(pytester):
    """Its hooks are optional: pytest refuses a plugin implementing a hook it does not know."""
    from tests.pytest_plugin.grid_project import grid_project

    grid_project(pytester)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(("exitstatus", "shouldfail", "finished", "said"), [
    (pytest.ExitCode.INTERRUPTED, False, 1, ("interrupted, by Ctrl-C or a signal", (1, 3),
                                             ("m-d-s1", "m-d-s2"))),
    (pytest.ExitCode.TESTS_FAILED, "stopping after 1 failures", 2,
     ("stopping after 1 failures", (2, 3), ("m-d-s2",))),
    (pytest.ExitCode.TESTS_FAILED, "stopping after 1 failures", 3, None),  # the last one failed
    (pytest.ExitCode.TESTS_FAILED, False, 3, None),  # failures, every test run
    (pytest.ExitCode.TESTS_FAILED, False, 2,  # a test never reported: xdist out of workers
     ("it ended before its last test ran: pytest's summary says why", (2, 3), ("m-d-s2",))),
    (pytest.ExitCode.OK, False, 3, None)])
def test_a_session_that_ended_before_its_last_test_marks_its_run(tmp_path, exitstatus, shouldfail,
                                                                 finished, said):
    run = a_run(tmp_path)
    tests = [f"evals/test_grid.py::test_cell[m-d-s{k}]" for k in range(3)]
    passed = [types.SimpleNamespace(nodeid=tests[k] + "@m") for k in range(finished)]  # xdist's
    stats = {"passed": passed, "failed": passed[-1:], "": [types.SimpleNamespace(nodeid="t9")]}
    config = a_config(run, reporter=Reporter(stats), SELECTED=tuple(tests))
    session = types.SimpleNamespace(config=config, exitstatus=exitstatus, shouldfail=shouldfail,
                                    shouldstop=False, testscollected=3)
    assert plugin._stopped_early(session) == said
    plugin.pytest_sessionfinish(session)
    stopped = config.stash[plugin.REPORT].stopped
    assert (stopped != "") == (said is not None) and (run / "stopped.json").exists() == bool(said)
    if said:
        assert f"({said[0]}): {said[1][0]} of its 3 selected tests finished" in stopped
        assert f"by then; not finished: {', '.join(said[2])}. The same command" in stopped
        lines = summary(config, Reporter())
        assert f"harness report: {stopped}" in lines


def test_without_a_terminal_the_stop_is_said_without_counts(tmp_path):
    config = a_config(a_run(tmp_path))
    session = types.SimpleNamespace(config=config, exitstatus=pytest.ExitCode.INTERRUPTED)
    assert plugin._stopped_early(session) == ("interrupted, by Ctrl-C or a signal", None, ())
