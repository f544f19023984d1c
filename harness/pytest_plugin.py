"""The benchmark grid as pytest cases (registered through the ``pytest11`` entry point).

A test that asks for the ``cell`` fixture in a module defining ``GRID`` (a
:class:`~harness.runner.GridConfig`) is parametrized into one case per cell, id
``<model>-<dataset>-<strategy>``. Cells of one model share an ``xdist_group`` (with
``--dist loadgroup`` they stay on one worker, which loads the model once). The ``run_cell``
fixture runs a cell through :class:`~harness.runner.GridWorker` (which writes its record at once)
and gates it against its baseline; the controller then builds the report from the records.

The plugin is loaded into every pytest session of an environment where the package is installed,
so it touches nothing it does not own until grid cells are collected: only then does a worker pin
its GPU, and only cells create the run folder. Corpus roots from the command line go to the loader,
never into the environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.runner.grid import Cell, GridConfig

RUN_DIR = pytest.StashKey[Path]()
GRID = pytest.StashKey[GridConfig]()
REPORT = pytest.StashKey[Any]()  # the BuiltReport
REGRESSION = pytest.StashKey[dict[str, Any]]()  # per item: the record, the gate's and snapshot's findings
STARTED = pytest.StashKey[bool]()
CORPUS_OPTIONS = {"iemocap": "IEMOCAP_ROOT", "msp_podcast": "MSP_PODCAST_ROOT",
                  "crema_d": "CREMA_D_ROOT"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "audio-LM ambiguous-emotion benchmark")
    group.addoption("--dataset-option", action="append", default=[], metavar="CORPUS.NAME=VALUE",
                    help="a corpus loader option, e.g. msp_podcast.split=Test1 or "
                         "iemocap.sessions=[1,2] (JSON values; repeatable)")
    group.addoption("--alpha", choices=("raw", "mean", "uniform"), default=None,
                    help="what w-bon weighs beams by: the raw log-likelihood (default), per token, "
                         "or uniformly")
    group.addoption("--entropy-bins", choices=("width", "quantile"), default=None,
                    help="ambiguity levels: equal-width (the grid's default) or equal-count")
    group.addoption("--limit", type=int, default=None,
                    help="items per corpus (deterministic, entropy-stratified subsample)")
    group.addoption("--models", default=None, help="comma-separated models (default: the grid's)")
    group.addoption("--strategies", default=None, help="comma-separated strategies")
    group.addoption("--verifier", default=None, help="the verifier model for alm-v/w-alm-v")
    group.addoption("--cache-dir", default=".cache/harness", help="generation cache folder")
    group.addoption("--report-dir", default="reports", help="where runs write their reports")
    group.addoption("--update-baselines", action="store_true",
                    help="record each cell's predictions as its new regression baseline")
    group.addoption("--gate-tolerance", type=float, default=0.0,
                    help="how much worse than the baseline a metric may get")
    for corpus, env in CORPUS_OPTIONS.items():
        group.addoption(f"--{corpus.replace('_', '-')}-root", default=None,
                        help=f"corpus root (default: ${env}, else the bundled copy)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in (("gpu", "needs a local GPU model"), ("api", "calls a paid API"),
                       ("slow", "a full-size local model"), ("cell", "a benchmark grid cell")):
        config.addinivalue_line("markers", f"{name}: {text}")
    if hasattr(config, "workerinput"):
        config.stash[RUN_DIR] = Path(config.workerinput["harness_run_dir"])
    else:  # a path only: the folder is made when a cell writes into it; the process id keeps
        # two runs started in the same second apart
        report_dir = Path(config.getoption("--report-dir", default="reports"))
        config.stash[RUN_DIR] = report_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller: every worker writes into the controller's run folder."""
    node.workerinput["harness_run_dir"] = str(node.config.stash[RUN_DIR])


def _pin_gpu(worker: str) -> None:
    """Worker gwN gets GPU N mod count, from HARNESS_GPUS or the GPUs present (before torch)."""
    listed = os.environ.get("HARNESS_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g for g in (listed or "").split(",") if g.strip()]
    if not gpus and shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        gpus = [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(worker.removeprefix("gw")) % len(gpus)]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _share_cores() -> None:
    """Each of N xdist workers gets cores // N threads (at least one) for torch and BLAS, unless
    the user set them: with -n 4 on 2 cores every worker took both, and the tiny model ran 4x
    slower in total than one process alone."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    torch = sys.modules.get("torch")  # imported already (by a conftest): tell it directly
    if torch is not None and "OMP_NUM_THREADS" not in _USER_SET:
        torch.set_num_threads(threads)


_USER_SET = {name for name in THREAD_VARIABLES if name in os.environ}


def resolved_grid(config: pytest.Config, grid: GridConfig) -> GridConfig:
    """The module's grid with the command-line options applied (computed once per session)."""
    if GRID not in config.stash:
        changes: dict[str, Any] = {}
        for option, field in (("--models", "models"), ("--strategies", "strategies")):
            value = config.getoption(option)
            if value:
                changes[field] = tuple(v.strip() for v in value.split(",") if v.strip())
        if config.getoption("--verifier"):
            changes.update(verifier=config.getoption("--verifier"), verifiers={})
        if config.getoption("--limit") is not None:
            changes["limit"] = config.getoption("--limit")
        if config.getoption("--alpha"):
            changes["alpha"] = config.getoption("--alpha")
        if config.getoption("--entropy-bins"):
            changes["entropy_bins"] = config.getoption("--entropy-bins")
        if config.getoption("--dataset-option"):
            changes["dataset_options"] = _dataset_options(grid, config.getoption("--dataset-option"))
        config.stash[GRID] = dataclasses.replace(grid, **changes)
    return config.stash[GRID]


def _dataset_options(grid: GridConfig, given: list[str]) -> dict[str, dict[str, Any]]:
    """The grid's corpus options with ``corpus.name=value`` ones from the command line over them
    (a value is read as JSON where it parses, else as text)."""
    from harness.data import CORPORA, option_names

    options = {corpus: dict(values) for corpus, values in grid.dataset_options.items()}
    for text in given:
        corpus, dot, rest = text.partition(".")
        name, equals, raw = rest.partition("=")
        if not (dot and equals and corpus in CORPORA and name in option_names(corpus)):
            known = {c: option_names(c) for c in CORPORA}
            raise pytest.UsageError(f"--dataset-option {text!r}: expected CORPUS.NAME=VALUE with "
                                    f"one of {known}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        options.setdefault(corpus, {})[name] = value
    return options


def _check_run_options(config: pytest.Config, grid: GridConfig) -> None:
    """What would only fail after cells have computed, refused before any runs: a limit below 1,
    and report or cache folders that cannot be written (a file in the way, a read-only disk)."""
    if grid.limit is not None and grid.limit < 1:
        raise pytest.UsageError(f"--limit must be at least 1, not {grid.limit}")
    from harness.data import CORPORA, option_names

    for corpus, options in grid.dataset_options.items():
        unknown = sorted(set(options) - set(option_names(corpus) if corpus in CORPORA else ()))
        if corpus not in CORPORA or unknown:
            raise pytest.UsageError(f"dataset options for {corpus!r}: unknown {unknown or corpus!r};"
                                    f" the corpora take {({c: option_names(c) for c in CORPORA})}")
    for option in ("--report-dir", "--cache-dir"):
        folder = Path(config.getoption(option))
        probe = folder / f".harness-write-check-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise pytest.UsageError(f"{option} {folder} cannot be written: "
                                    f"{exc.strerror or exc}") from None
    from harness.cache import CacheError, GenerationCache

    try:  # a damaged or foreign cache file: refused now, not after the first cell computed
        GenerationCache(Path(config.getoption("--cache-dir")) / "generations.sqlite").close()
    except CacheError as exc:
        raise pytest.UsageError(str(exc)) from None


def _marks(cell: Cell) -> list[Any]:
    marks = [pytest.mark.xdist_group(name=cell.model), pytest.mark.cell]
    if cell.kind == "api":
        marks.append(pytest.mark.api)
    elif cell.needs_gpu:
        marks += [pytest.mark.gpu, pytest.mark.slow]
    return marks


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames or not hasattr(metafunc.module, "GRID"):
        return
    config = metafunc.config
    grid = resolved_grid(config, metafunc.module.GRID)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not config.stash.get(STARTED, False):  # the first grid module collected
        _check_run_options(config, grid)
        if worker:  # grid cells on a worker: pin its GPU and share the cores, before torch
            _pin_gpu(worker)
            _share_cores()
        config.stash[STARTED] = True
    metafunc.parametrize("cell", [pytest.param(c, id=c.id, marks=_marks(c))
                                  for c in grid.cells()])


@pytest.fixture(scope="session")
def grid_worker(request: pytest.FixtureRequest):
    """Per worker: models, datasets and the cache, each loaded once."""
    from harness.runner.worker import GridWorker

    config = request.config
    roots = {corpus: config.getoption(f"--{corpus.replace('_', '-')}-root")
             for corpus in CORPUS_OPTIONS}
    worker = GridWorker(config.stash[RUN_DIR], Path(config.getoption("--cache-dir")),
                        config.stash.get(GRID, None), roots)
    yield worker
    worker.close()


@pytest.fixture
def run_cell(request: pytest.FixtureRequest, grid_worker):
    """``run_cell(cell) -> CellRecord``: run, write the record, then gate it against its baseline
    (or record the baseline, with ``--update-baselines``); skips saying why a cell cannot run.
    What the gate and the snapshot found is added to the record when the test ends."""
    from harness.runner.worker import CellSkipped

    state: dict[str, Any] = {}
    request.node.stash[REGRESSION] = state

    def run(cell: Cell):
        baselines = Path(request.module.__file__).parent / "baselines"
        try:
            record, path = grid_worker.run(cell, progress_sink=_progress_sink(request))
        except CellSkipped as exc:
            pytest.skip(str(exc))
        state.update(record=record, path=path)
        request.node.user_properties.append(("harness_cell", str(path)))
        if request.config.getoption("--update-baselines"):
            written = grid_worker.save_baseline(record, baselines)
            state["baseline"] = f"recorded {written}"
            request.node.user_properties.append(("harness_baseline", str(written)))
            return record
        verdict = grid_worker.gate(record, baselines, request.config.getoption("--gate-tolerance"))
        if verdict is not None:
            state.update(gate=verdict.summary, gate_failures=verdict.failures)
            if verdict.model_updated or verdict.failures:
                request.node.user_properties.append(("harness_gate", verdict.summary))
            if verdict.failures:
                pytest.fail(f"{cell.id} is significantly worse than its baseline:\n  "
                            + "\n  ".join(verdict.failures), pytrace=False)
        return record

    yield run
    _note_regression(grid_worker, state)


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
        write_record(dataclasses.replace(record, meta={**record.meta, "regression": found}),
                     grid_worker.run_dir)


def _progress_sink(request: pytest.FixtureRequest) -> Callable[[str], None] | None:
    """Progress lines go to the terminal without ``-n``, else to ``<run>/logs/<worker>.log``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        log = request.config.stash[RUN_DIR] / "logs" / f"{worker}.log"
        log.parent.mkdir(parents=True, exist_ok=True)

        def to_file(line: str) -> None:
            with open(log, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {line}\n")

        return to_file
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return None

    def to_terminal(line: str) -> None:
        with capture.global_and_fixture_disabled():  # past pytest's output capture
            reporter.write_line(line)

    return to_terminal


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run_dir = config.stash.get(RUN_DIR, None)
    if hasattr(config, "workerinput") or run_dir is None or not (run_dir / "cells").is_dir():
        return
    from harness.report.build import build_report

    built = build_report(run_dir)
    config.stash[REPORT] = built
    if built.bad_cells and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a cell file that is not a record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found: dict[str, list[tuple[str, str]]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) not in ("call", "teardown"):
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name in ("harness_snapshot", "harness_gate", "harness_baseline"):
                    found.setdefault(name, []).append((report.nodeid, str(value)))
    _summarize_regression(terminalreporter, found)
    built = config.stash.get(REPORT, None)
    if built is not None:
        path = built.path
        terminalreporter.write_line(f"harness report: {path} (tables: {path.parent / 'tables.md'})")
        for _, reason in built.bad_cells:
            terminalreporter.write_line(f"harness report: bad cell file left out: {reason}", red=True)


def _summarize_regression(terminalreporter: Any, found: dict[str, list[tuple[str, str]]]) -> None:
    from harness.runner.snapshots import NONE

    def cell_of(nodeid: str) -> str:
        return nodeid.rsplit("[", 1)[-1].rstrip("]")

    unsnapped = sorted({cell_of(n) for n, v in found.get("harness_snapshot", []) if v == NONE})
    if unsnapped:
        terminalreporter.write_line(
            f"harness: {len(unsnapped)} cells have no snapshot for this configuration (not a "
            f"failure; --snapshot-update records them): {', '.join(unsnapped[:6])}"
            + (f" and {len(unsnapped) - 6} more" if len(unsnapped) > 6 else ""), yellow=True)
    for _, summary in sorted(set(found.get("harness_gate", []))):
        terminalreporter.write_line(f"harness gate: {summary}")
    written = sorted({v for _, v in found.get("harness_baseline", [])})
    if written:
        folders = sorted({str(Path(v).parent) for v in written})
        terminalreporter.write_line(f"harness: recorded {len(written)} baselines in {', '.join(folders)}"
                                    f" and their cells' snapshots (in snapshots/ beside them)")
