"""The benchmark grid as pytest cases (registered through the ``pytest11`` entry point).

A test that asks for the ``cell`` fixture in a module defining ``GRID`` (a
:class:`~harness.runner.GridConfig`) is parametrized into one case per cell, id
``<model>-<dataset>-<strategy>``. Under xdist (``--dist loadgroup``) each model's cells on one
corpus go to one worker, which loads the model once (``--group-by``). The ``run_cell`` fixture runs
a cell through :class:`~harness.runner.GridWorker` (which writes its record at once) and gates it
against its baseline; ``cell_snapshot`` checks it against the snapshot of the same inputs; the
controller then builds the report from the records.

The plugin is loaded into every pytest session of an environment where the package is installed,
so it touches nothing it does not own until grid cells are collected: only then does a worker pin
its GPU, and only cells create the run folder. Corpus roots from the command line go to the loader,
never into the environment.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.fixtures import (
    PLANS,
    RUN_DIR,
    cell_id_of,
    cell_snapshot,
    grid_worker,
    run_cell,
)
from harness.pytest_plugin.options import (
    add_options,
    check_run_options,
    check_settings,
    resolved_grid,
    run_folder,
    setting,
    shown,
)
from harness.pytest_plugin.scheduling import (
    make_scheduler,
    pin_gpu,
    select_shard,
    share_cores,
    worker_count,
    worker_id,
)
from harness.pytest_plugin.summary import LogFollower, own_line, regression_findings, summary_lines
from harness.pytest_plugin.termination import SigtermOnceCellsRun, stop_on_sigterm, terminated
from harness.runner.grid import Cell

__all__ = ["cell_snapshot", "grid_worker", "run_cell"]
REPORT = pytest.StashKey[Any]()  # the BuiltReport
REPORT_FAILED = pytest.StashKey[str]()  # why the report could not be built
STARTED = pytest.StashKey[bool]()
ONLY_SKIPPED = pytest.StashKey[int]()  # how many cells were selected where every one skipped
FOLLOWER = pytest.StashKey[LogFollower]()
SELECTED = pytest.StashKey[tuple[str, ...]]()  # the node ids of the tests selected (controller)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in (("gpu", "needs a local GPU model"), ("api", "calls a paid API"),
                       ("slow", "a full-size local model"), ("cell", "a benchmark grid cell")):
        config.addinivalue_line("markers", f"{name}: {text}")
    check_settings(config)
    if hasattr(config, "workerinput"):
        config.stash[RUN_DIR] = Path(config.workerinput["harness_run_dir"])
    else:  # a path only: the folder is made when a cell writes into it; the process id keeps
        # two runs started in the same second apart
        report_dir = run_folder(config, "report_dir")
        config.stash[RUN_DIR] = report_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        if config.getoption("numprocesses", default=None):
            config.pluginmanager.register(SigtermOnceCellsRun(config))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller: every worker writes into the controller's run folder."""
    node.workerinput["harness_run_dir"] = str(node.config.stash[RUN_DIR])
    node.workerinput["harness_controller_pid"] = os.getpid()


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup`` (the project's default): cells grouped by model and corpus."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return make_scheduler(config, log, setting(config, "group_by"))


def _marks(cell: Cell) -> list[Any]:
    marks = [pytest.mark.cell]
    if cell.kind == "api":
        marks.append(pytest.mark.api)
    elif cell.needs_gpu:
        marks += [pytest.mark.gpu, pytest.mark.slow]
    return marks


def _start_grid(config: pytest.Config) -> None:
    """Once grid cells are collected: the run's folders checked and, on a worker, its GPU pinned;
    the process's share of the cores taken, before torch (without ``-n`` every core it may use:
    in a container limited to 4 CPUs, torch alone would take every core of the machine)."""
    check_run_options(config)
    worker = worker_id(config)
    if worker:
        pin_gpu(worker)
    share_cores(worker_count(config))
    stop_on_sigterm(config)
    config.stash[STARTED] = True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames or not hasattr(metafunc.module, "GRID"):
        return
    config = metafunc.config
    try:
        grid = resolved_grid(config, metafunc.module.GRID)
        if not config.stash.get(STARTED, False):  # the first grid module collected
            _start_grid(config)
    except pytest.UsageError as exc:  # the message alone, not a traceback through pluggy (under
        raise pytest.Collector.CollectError(str(exc)) from None  # xdist too)
    metafunc.parametrize("cell", [pytest.param(c, id=c.id, marks=_marks(c))
                                  for c in grid.cells()])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--shard"):
        select_shard(config, items, config.getoption("--shard"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist, on the controller: the tests selected (every worker collects the same), so that a
    run stopped early can say which never finished."""
    node.config.stash.setdefault(SELECTED, tuple(ids))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The tests selected, kept (as xdist's controller keeps them); with ``--plan on``: which
    strategies each model runs on each corpus in this session (the selected cells; a worker
    plans only the groups it is sent)."""
    config = session.config
    config.stash[SELECTED] = tuple(item.nodeid for item in session.items)
    if setting(config, "plan") != "on":
        return
    plans: dict[tuple[str, str], list[str]] = {}
    for item in session.items:
        cell = getattr(getattr(item, "callspec", None), "params", {}).get("cell")
        if isinstance(cell, Cell) and cell.kind != "chance":
            plans.setdefault((cell.model, cell.dataset), []).append(cell.strategy)
    config.stash[PLANS] = {key: tuple(value) for key, value in plans.items()}


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", default=None):
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.stash[FOLLOWER] = LogFollower(config.stash[RUN_DIR] / "logs",
                                                 lambda line: own_line(reporter, line)).start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    follower = config.stash.get(FOLLOWER, None)
    if follower is not None:
        follower.stop()
    if session.exitstatus == pytest.ExitCode.OK and _only_skipped_cells(config):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED  # a gate that checked nothing
    run_dir = config.stash.get(RUN_DIR, None)
    if hasattr(config, "workerinput") or run_dir is None or not run_dir.is_dir():
        return  # not a grid's session, or none of its cells ran
    from harness.report.stopped import clear_running, mark_stopped

    cells = (run_dir / "cells").is_dir()
    stop = _stopped_early(session) if cells else None
    if stop is not None:
        with contextlib.suppress(OSError):  # a full disk: the report's own writing says so
            mark_stopped(run_dir, *stop)
    with contextlib.suppress(OSError):
        clear_running(run_dir)  # the session reached its end, having said if it stopped early
    if not cells:
        return
    from harness.report.build import build_report

    try:
        built = build_report(run_dir)
    except Exception as exc:  # a full disk, a figure that fails: the cells' records stay on disk
        config.stash[REPORT_FAILED] = f"{type(exc).__name__}: {exc}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    config.stash[REPORT] = built
    if built.bad_cells and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a cell file that is not a record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for line, markup in summary_lines(regression_findings(terminalreporter.stats)):
        terminalreporter.write_line(line, **markup)
    skipped = config.stash.get(ONLY_SKIPPED, 0)
    if skipped:
        terminalreporter.write_line(f"harness: none of the {skipped} selected cells ran (each "
                                    "skipped, for the reasons in the summary): nothing was "
                                    "evaluated or gated, so the run does not pass (exit code 5, "
                                    "pytest's for no test run)", red=True)
    failed = config.stash.get(REPORT_FAILED, None)
    if failed is not None:
        run_dir = shown(config.stash[RUN_DIR])
        terminalreporter.write_line(f"harness report: not built ({failed[:300]}); every cell's record "
                                    f"is in {run_dir / 'cells'}: python -m harness.report {run_dir} "
                                    "builds it again", red=True)
    built = config.stash.get(REPORT, None)
    if built is not None:
        if built.results and config.getoption("verbose", 0) >= 0:  # -q leaves them out
            terminalreporter.section("harness results")
            for line in built.results:
                terminalreporter.write_line(line)
        path = shown(built.path)
        terminalreporter.write_line(f"harness report: {path} (tables: {path.parent / 'tables.md'}; "
                                    f"page: {path.parent / 'report.html'})")
        if built.stopped:
            terminalreporter.write_line(f"harness report: {built.stopped}", red=True)
        for _, reason in built.bad_cells:
            terminalreporter.write_line(f"harness report: bad cell file left out: {reason}", red=True)


def _stopped_early(session: pytest.Session
                   ) -> tuple[str, tuple[int, int] | None, tuple[str, ...]] | None:
    """Why the session ended before every selected test ran (Ctrl-C, ``-x``, xdist giving up on
    crashed workers), with how many of them finished where the terminal counted them and the
    cells (tests) that did not; None where it ran them all."""
    reason = next((why for why in (getattr(session, "shouldfail", False),
                                   getattr(session, "shouldstop", False)) if why), None)
    if reason is None and session.exitstatus == pytest.ExitCode.INTERRUPTED:
        reason = ("terminated by SIGTERM (a job's time limit, timeout, kill)"
                  if terminated(session.config) else "interrupted, by Ctrl-C or a signal")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    counts: tuple[int, int] | None = None
    unfinished: tuple[str, ...] = ()
    if reporter is not None:
        finished = {report.nodeid for key, reports in reporter.stats.items()
                    if key not in ("", "deselected", "warnings") for report in reports
                    if hasattr(report, "nodeid")}
        counts = (len(finished), session.testscollected)
        if counts[0] >= counts[1]:  # the last test failed under -x: nothing was left to run
            return None
        if reason is None:  # xdist out of workers to replace crashed ones says so only itself
            reason = "it ended before its last test ran: pytest's summary says why"
        done = {cell_id_of(nodeid) for nodeid in finished}
        selected: tuple[str, ...] = session.config.stash.get(SELECTED, ())
        unfinished = tuple(test for test in map(cell_id_of, selected) if test not in done)
    if reason is None:
        return None
    return (reason if isinstance(reason, str) else "stopped by pytest"), counts, unfinished



def _only_skipped_cells(config: pytest.Config) -> bool:
    """Whether every test of the session was a grid cell that skipped (none ran); their number
    is kept for the summary."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput"):
        return False
    outcomes = {key: reports for key, reports in reporter.stats.items()
                if key not in ("", "deselected", "warnings")}
    skipped = outcomes.pop("skipped", [])
    if outcomes or not skipped or not all("cell" in getattr(r, "keywords", {}) for r in skipped):
        return False
    config.stash[ONLY_SKIPPED] = len(skipped)
    return True
