"""The grid's fixtures: ``grid_worker`` (per worker: models, corpora and cache, each loaded once),
``run_cell`` (run, record, gate) and ``cell_snapshot`` (the snapshot of the same inputs)."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import gc
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin.options import GRID, corpus_roots, run_folder, setting
from harness.pytest_plugin.scheduling import cores_while_running, worker_id
from harness.pytest_plugin.summary import gated_property
from harness.runner.grid import Cell

RUN_DIR = pytest.StashKey[Path]()
REGRESSION = pytest.StashKey[dict[str, Any]]()  # per item: the record, the gate's and snapshot's findings
SAID_RUNNING = pytest.StashKey[bool]()  # this process wrote running.json
PLANS = pytest.StashKey[dict[tuple[str, str], tuple[str, ...]]]()  # --plan on: strategies per (model, corpus)


@pytest.fixture(scope="session")
def grid_worker(request: pytest.FixtureRequest):
    """Per worker: models, datasets and the cache, each loaded once."""
    from harness.runner.worker import GridWorker

    config = request.config
    _end_quickly()
    worker = GridWorker(config.stash[RUN_DIR], run_folder(config, "cache_dir"),
                        config.stash.get(GRID, None), corpus_roots(config),
                        plans=config.stash.get(PLANS, {}))
    yield worker
    worker.close()


@functools.cache  # registered once, however many sessions this process runs
def _end_quickly() -> None:
    """At this process's exit, after a last collection of its garbage (each finalizer runs, a
    file is flushed), freeze what is left, so that the interpreter's own collections at its end
    skip it: a process that loaded torch and a model took about 1.1 s to end (a worker's end
    holds up the run: xdist waits for it), 0.4 s with this."""
    atexit.register(_collect_then_freeze)


def _collect_then_freeze() -> None:
    gc.collect()
    gc.freeze()


@pytest.fixture
def run_cell(request: pytest.FixtureRequest, grid_worker):
    """``run_cell(cell) -> CellRecord``: run, write the record, then gate it against its baseline
    (or record the baseline, with ``--update-baselines``); skips saying why a cell cannot run.
    What the gate and the snapshot found is added to the record when the test ends."""
    from harness.models.api import ModelNotLoaded, ModelStopped
    from harness.runner.evaluate import NothingToEvaluate
    from harness.runner.worker import CellSkipped, RecordNotWritten

    state: dict[str, Any] = {}
    request.node.stash[REGRESSION] = state

    def run(cell: Cell):
        baselines = Path(request.module.__file__).parent / "baselines"
        worker = worker_id(request.config)
        sharing = (cores_while_running(request.config.stash[RUN_DIR] / "logs" / ".running", worker)
                   if worker and cell.kind == "local" else contextlib.nullcontext())
        failed = None
        try:
            # what the cell needs first, outside the core sharing (which may import torch): a cell
            # whose model is not here skips without importing it, as a worker given only such
            # cells does under -n 4 on a machine with the embedded default alone
            grid_worker.inputs(cell)
            _say_running(request)
            with sharing as take_cores:  # a model loaded in this cell takes them first
                grid_worker.before_load = take_cores
                try:
                    record, path = grid_worker.run(cell, progress_sink=_progress_sink(request))
                finally:
                    grid_worker.before_load = None
        except CellSkipped as exc:
            pytest.skip(str(exc))
        except (NothingToEvaluate, ModelNotLoaded, ModelStopped) as exc:  # a corpus read as
            # empty, damaged weights, a key refused, a spending cap reached: loud, not a skip,
            # and not a traceback
            failed = f"{cell.id}: {exc}"
        except RecordNotWritten as exc:
            failed = str(exc)
        if failed is not None:
            pytest.fail(failed, pytrace=False)
        state.update(record=record, path=path)
        request.node.user_properties.append(("harness_cell", str(path)))
        if request.config.getoption("--update-baselines"):
            written = grid_worker.save_baseline(record, baselines)
            state["baseline"] = f"recorded {written}"
            request.node.user_properties.append(("harness_baseline", str(written)))
            return record
        _gate(grid_worker, record, baselines, request, state)
        return record

    yield run
    _note_regression(grid_worker, state)


def cell_id_of(nodeid: str) -> str:
    """A cell's id (``test_cell[<cell>]``'s, which may hold "::", "[" or "]" of a model's
    name), or the test's name where it has no parameters."""
    opened, closed = nodeid.find("["), nodeid.rfind("]")  # "]@group" where xdist suffixes it
    return nodeid[opened + 1:closed] if 0 <= opened < closed else nodeid.rsplit("::", 1)[-1]


def _say_running(request: pytest.FixtureRequest) -> None:
    """Once per process, as its first cell starts: ``running.json`` in the run folder, naming the
    session's process (the controller's under xdist) and its selected tests; the controller
    removes it at the session's end, so a folder that keeps it tells a report built from it
    later that the run was killed before its end (:mod:`harness.report.stopped`)."""
    from harness.report.stopped import mark_running

    config = request.config
    if config.stash.get(SAID_RUNNING, False):
        return
    config.stash[SAID_RUNNING] = True
    workerinput = getattr(config, "workerinput", {})
    run_dir = config.stash[RUN_DIR]
    with contextlib.suppress(OSError):  # a full disk: the cell's own record says so
        run_dir.mkdir(parents=True, exist_ok=True)
        mark_running(run_dir, len(request.session.items),
                     workerinput.get("harness_controller_pid", os.getpid()),
                     [cell_id_of(item.nodeid) for item in request.session.items])


def _gate(grid_worker, record, baselines: Path, request: pytest.FixtureRequest,
          state: dict[str, Any]) -> None:
    """The cell against its baseline, if it has one: the test fails on a significantly worse
    metric, or on a baseline the gate cannot use (the record is written either way)."""
    from harness.runner.baseline_file import BaselineError

    unusable: str | None = None
    alpha = setting(request.config, "gate_alpha")
    try:
        verdict = grid_worker.gate(record, baselines, setting(request.config, "gate_tolerance"),
                                   alpha)
    except BaselineError as exc:
        unusable = str(exc)
    if unusable is not None:
        state.update(gate=f"baseline unusable: {unusable}", gate_failures=[unusable])
        pytest.fail(f"{record.cell}: its baseline cannot be used: {unusable}", pytrace=False)
    if verdict is None:
        return
    state.update(gate=verdict.summary, gate_failures=verdict.failures)
    request.node.user_properties.append(("harness_gated", gated_property(verdict, alpha)))
    if verdict.model_updated or verdict.failures:
        request.node.user_properties.append(("harness_gate", verdict.summary))
    if verdict.failures:
        what = "is significantly worse than" if verdict.changes else "could not be compared with"
        lines = verdict.failures + ([f"{verdict.inputs_note} (if meant, --update-baselines makes "
                                     "this run the baseline)"] if verdict.inputs_note else [])
        pytest.fail(f"{record.cell} {what} its baseline:\n  " + "\n  ".join(lines), pytrace=False)


@pytest.fixture
def cell_snapshot(request: pytest.FixtureRequest, run_cell, snapshot):
    """``cell_snapshot.check(record)``: the cell's metrics against the snapshot of the same
    inputs (see :mod:`harness.runner.snapshots`); a configuration never recorded is not a
    failure, and the terminal summary lists it."""
    from harness.runner.snapshots import CellSnapshot

    checker = CellSnapshot(snapshot, record_all=request.config.getoption("--update-baselines"))
    yield checker
    if checker.outcome is not None:
        request.node.stash[REGRESSION]["snapshot"] = checker.outcome
        request.node.user_properties.append(("harness_snapshot", checker.outcome))


def _note_regression(grid_worker, state: dict[str, Any]) -> None:
    """The gate's and the snapshot's findings into the cell's record (rewritten atomically)."""
    if "record" not in state:
        return
    from harness.record import write_record

    found = {k: state[k] for k in ("gate", "gate_failures", "baseline", "snapshot") if k in state}
    if found:
        record = state["record"]
        try:
            write_record(dataclasses.replace(record, meta={**record.meta, "regression": found},
                                             evidence=None),  # the items file is written already
                         grid_worker.run_dir)
        except OSError as exc:  # the record as first written stands; the verdict is in the terminal
            warnings.warn(f"{record.cell}: the gate's and the snapshot's findings could not be "
                          f"added to its record {state['path']}: {exc.strerror or exc}", stacklevel=1)


def _progress_sink(request: pytest.FixtureRequest) -> Callable[[str], None] | None:
    """Progress lines go to the terminal without ``-n``; under xdist to ``<run>/logs/<worker>.log``,
    which the controller follows and prints as the lines arrive."""
    worker = worker_id(request.config)
    if worker:
        log = request.config.stash[RUN_DIR] / "logs" / f"{worker}.log"
        log.parent.mkdir(parents=True, exist_ok=True)

        def to_file(line: str) -> None:
            try:
                with open(log, "a") as f:
                    f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            except OSError:  # a full disk costs the progress lines, never the cell computing
                pass

        return to_file
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return None

    def to_terminal(line: str) -> None:
        with capture.global_and_fixture_disabled():  # past pytest's output capture
            reporter.write_line(line)

    return to_terminal
