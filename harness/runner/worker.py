"""What one pytest worker keeps for a whole grid run: models and datasets loaded once each, the
generation cache, and the regression gate."""

from __future__ import annotations

import dataclasses
import re
import shlex
import traceback
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.baselines import annotator
from harness.models.api import DecodingUnsupported, ModelNotLoaded, ModelStopped, ModelUnavailable
from harness.record import CellRecord, write_record
from harness.runner.grid import Cell, GridConfig
from harness.strategies import StrategyUnsupported, check_supported, get_strategy


class CellSkipped(Exception):
    """The cell cannot run here (weights, key or corpus missing; a capability lacking): why."""


class RecordNotWritten(Exception):
    """A cell's record could not be written (a full disk, a folder made read-only mid-run)."""


class GridWorker:
    """Loads each model and dataset at most once; a failure to load is remembered as its reason.

    Args:
        run_dir: Where cell records are written (``<run_dir>/cells/``).
        cache_dir: The generation cache's folder.
        grid: The grid being run (its seed, limit and verifiers).
        roots: Corpus roots given on the command line (None: the environment or the fixture).
        plans: Per (model, corpus), the strategies to run as one plan when the first of their
            cells runs (:mod:`harness.runner.plan`); the cells then read the cache.
    """

    def __init__(self, run_dir: Path, cache_dir: Path, grid: GridConfig | None = None,
                 roots: Mapping[str, str | Path | None] | None = None,
                 plans: Mapping[tuple[str, str], tuple[str, ...]] | None = None) -> None:
        self.run_dir, self.cache_dir = Path(run_dir), Path(cache_dir)
        self.grid = grid or GridConfig(models=())
        self.roots = dict(roots or {})
        self.plans = dict(plans or {})
        self._models: dict[str, Any] = {}
        self._datasets: dict[str, Any] = {}
        self._cache: Any = None
        self._planned: dict[tuple[str, str], tuple[Any, str]] = {}  # -> (PlanReport, first cell)
        # called just before a model is loaded (at its first call for an answer the cache
        # lacks): the pytest plugin gives the running cell's share of the cores to torch then
        self.before_load: Callable[[], None] | None = None

    @property
    def cache(self):
        if self._cache is None:
            from harness.cache import GenerationCache

            self._cache = GenerationCache(self.cache_dir / "generations.sqlite")
        return self._cache

    def close(self) -> None:
        """Close the cache and the models loaded (an API model's connections; a model never
        loaded is not loaded to be closed); a model that fails to close is warned of."""
        from harness.models.deferred import close_model

        if self._cache is not None:
            self._cache.close()
        for name, model in self._models.items():
            if not isinstance(model, Exception):
                try:
                    close_model(model)
                except Exception as exc:  # the run's results are written: say so, go on
                    warnings.warn(f"{name}: closing it failed: {type(exc).__name__}: {exc}",
                                  stacklevel=2)

    def model(self, name: str):
        """The model, or raise CellSkipped saying why it cannot run here."""
        if name not in self._models:
            from harness.models.deferred import deferred_model

            args = dict(self.grid.model_args.get(name, {}))
            try:  # a local model's weights load when a cell first needs an answer not cached
                self._models[name] = deferred_model(
                    name, args, lambda exc: _why_not_loaded(name, args, exc), self._before_load)
            except (ModelUnavailable, ImportError) as exc:
                self._models[name] = CellSkipped(str(exc))
            except Exception as exc:  # remembered: the model's other cells fail without loading it
                self._models[name] = ModelNotLoaded(_why_not_loaded(name, args, exc))
        return _or_raise(self._models[name])

    def _before_load(self) -> None:
        if self.before_load is not None:
            self.before_load()

    def dataset(self, name: str):
        """The corpus (subsampled to the grid's limit), or raise CellSkipped saying why not."""
        if name not in self._datasets:
            from harness.data import DataError, load_dataset
            from harness.runner.evaluate import NothingToEvaluate, stratified_subsample

            root = self.roots.get(name)
            try:
                options = dict(self.grid.dataset_options.get(name, {}))
                loaded = load_dataset(name, root, **options)
                _warn_of_dropped_data(loaded)
                self._datasets[name] = stratified_subsample(loaded, self.grid.limit)
            except DataError as exc:
                self._datasets[name] = CellSkipped(f"{name}: {exc}{_what_to_check(name, root, exc)}")
            except Exception as exc:  # a reader of one's own that fails: read once, and each cell
                self._datasets[name] = NothingToEvaluate(  # on the corpus fails saying where
                    f"{name} could not be read: {type(exc).__name__}: {str(exc)[:300]}"
                    f"{_raised_at(exc)}")
        return _or_raise(self._datasets[name])

    def inputs(self, cell: Cell) -> tuple[Any, Any, Any]:
        """The cell's corpus, model and verifier (None where its strategy needs none), each
        loaded once per worker; raises CellSkipped saying why one cannot be had here (the corpus
        first, then the prompt set's wording of it)."""
        dataset = self.dataset(cell.dataset)
        if cell.kind != "chance":  # a chance baseline reads no prompt
            self._check_wording(cell.dataset)
        model = self.model(cell.model)
        strategy = get_strategy(cell.strategy)
        if cell.kind == "chance" or not strategy.needs_verifier:
            return dataset, model, None
        try:  # a model that cannot run the strategy skips for that, not for its verifier's key
            check_supported(strategy, model, verifier=model)
        except StrategyUnsupported as exc:
            raise CellSkipped(str(exc)) from None
        name = self.grid.verifier_for(cell.model)
        try:
            verifier = self.model(name)
        except CellSkipped as exc:
            raise CellSkipped(f"its verifier {exc} (or name another: --verifier)") from None
        return dataset, model, verifier

    def _check_wording(self, corpus: str) -> None:
        """A prompt set of one's own may word only some corpora: the others' cells skip saying
        so, rather than fail on their first prompt."""
        from harness.prompts import corpus_wording

        prompts = self.grid.strategy_config().prompts
        try:
            corpus_wording(corpus, prompts)
        except ValueError as exc:
            raise CellSkipped(f"prompt set {prompts}: {exc}") from None

    def run(self, cell: Cell, progress_sink: Callable[[str], None] | None = None
            ) -> tuple[CellRecord, Path]:
        """Run the cell and write its record at once; raises CellSkipped for what is missing.

        ``progress_sink(line)`` receives progress lines (the terminal, or a per-worker log).
        """
        from harness.runner.evaluate import evaluate
        from harness.runner.progress import Progress

        dataset, model, verifier = self.inputs(cell)
        progress = Progress(cell.id, len(dataset), progress_sink) if progress_sink else None
        cache = None if cell.kind == "chance" else self.cache  # a baseline needs no cache
        try:
            plan = self._plan(cell, model, dataset, progress_sink)
            record = evaluate(model, dataset, cell.strategy, verifier=verifier, cache=cache,
                              config=self.grid.strategy_config(),
                              progress=progress,
                              entropy_bins=self.grid.entropy_bins, interval=self.grid.interval)
        except (StrategyUnsupported, DecodingUnsupported) as exc:
            raise CellSkipped(str(exc)) from None
        except ModelStopped as exc:  # a key refused, a spending cap reached: this cell fails;
            # the model's later cells skip, unsent
            for name in {cell.model, self.grid.verifier_for(cell.model)}:
                if str(exc).startswith(f"{name}:"):
                    self._models[name] = CellSkipped(f"stopped: {exc}")
            raise
        except ModelUnavailable as exc:  # a model loaded at its first call cannot run here
            if exc is getattr(model, "failure", None):
                raise CellSkipped(str(exc)) from None
            if verifier is not None and exc is getattr(verifier, "failure", None):
                raise CellSkipped(f"its verifier {exc} (or name another: --verifier)") from None
            raise
        record = dataclasses.replace(record, cell=cell.id, model=cell.model)
        if plan is not None:
            record = _with_plan(record, cell, *plan)
        try:
            return record, write_record(record, self.run_dir)
        except OSError as exc:  # a full disk: said as such, not as a traceback in files.py
            rerun = "" if cache is None else ("; a rerun once that is mended takes the model's "
                                              "answers from the generation cache")
            raise RecordNotWritten(f"{cell.id}: computed, but its record could not be written in "
                                   f"{self.run_dir / 'cells'}: {exc.strerror or exc}{rerun}") from None

    def _plan(self, cell: Cell, model, dataset, progress_sink) -> tuple[Any, str] | None:
        """The plan of the cell's model on its corpus (run now if this is its first cell), and
        the cell it ran in; None without one."""
        from harness.runner.plan import run_plan
        from harness.runner.progress import Progress

        key = (cell.model, cell.dataset)
        if key not in self.plans or cell.kind == "chance":
            return None
        if key not in self._planned:
            strategies = self.plans[key]
            verifier = None
            if any(get_strategy(s).needs_verifier for s in strategies):
                try:
                    verifier = self.model(self.grid.verifier_for(cell.model))
                except (CellSkipped, ModelNotLoaded):
                    verifier = None  # the verifier strategies are left out; their cells skip
            progress = (Progress(f"{cell.model}-{cell.dataset} plan ({', '.join(strategies)})",
                                 len(dataset), progress_sink) if progress_sink else None)
            report = run_plan(model, dataset, strategies, config=self.grid.strategy_config(),
                              cache=self.cache, verifier=verifier, progress=progress)
            self._planned[key] = (report, cell.id)
        return self._planned[key]

    def votes(self, dataset: str, model: str | None = None) -> dict[str, np.ndarray]:
        """What a cell of ``model`` on a loaded corpus is scored against, per item id: the
        annotators' votes, or, for the annotator reference, the raters it did not hold out (as
        its record is scored: :func:`harness.baselines.annotator`, the grid's seed)."""
        loaded = self.dataset(dataset)
        if model == "annotator":
            _, targets = annotator(loaded, self.grid.strategy_config().seed)
            return {item.id: row for item, row in zip(loaded, targets)}
        return {item.id: np.asarray(item.votes) for item in loaded}

    def save_baseline(self, record: CellRecord, folder: Path) -> Path:
        """Record the cell as its new baseline (predictions, per-item scores, inputs)."""
        from harness.record import inputs_of
        from harness.runner.baseline_file import save_baseline

        return save_baseline(record, folder, self.votes(record.dataset, record.model),
                             inputs_of(record))

    def gate(self, record: CellRecord, folder: Path, tolerance: float, alpha: float = 0.05):
        """The cell against its baseline in ``folder`` (a GateVerdict), or None without one;
        ``alpha``: :func:`harness.runner.gating.paired_changes`'."""
        from harness.runner.baseline_file import baseline_path
        from harness.runner.gating import gate

        path = baseline_path(folder, record.cell)
        if not path.is_file():
            return None
        return gate(record, self.votes(record.dataset, record.model), path, tolerance,
                    seed=self.grid.seed, alpha=alpha)


def _with_plan(record: CellRecord, cell: Cell, report: Any, ran_in: str) -> CellRecord:
    """The record with its share of the plan: the plan's seconds and model calls for its strategy
    added to its own (which then only read the cache), and what the plan was in its metadata."""
    share = report.seconds.get(cell.strategy, 0.0)
    plan = {"strategies": sorted(report.seconds), "ran_in_cell": ran_in, "seconds": share,
            "left_out": dict(report.left_out)}
    meta = {**record.meta, "plan": plan}
    calls, computed = meta.get("generations"), report.computed.get(cell.strategy, 0)
    if calls:  # what the plan computed for the cell, the cell then read from the cache
        meta["generations"] = {"computed": calls["computed"] + computed,
                               "from_cache": max(0, calls["from_cache"] - computed)}
    return dataclasses.replace(record, seconds=record.seconds + share,
                               gpu_seconds=record.gpu_seconds + share if record.gpu_seconds else 0.0,
                               meta=meta)


def _or_raise(value: Any) -> Any:
    """A model or corpus loaded once, or the reason it could not be, raised again."""
    if isinstance(value, Exception):
        raise value
    return value


def _raised_at(exc: BaseException) -> str:
    """`` (raised at file.py:12)``: the innermost frame of ``exc``'s traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (raised at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


# a model argument whose value a message names as *** (--model-arg gpt-4o.api_key=...; not
# max_new_tokens or tokenizer_path, whose values say what went wrong)
_SECRET_ARGUMENT = re.compile(r"(key|token|secret|password|credentials?)$", re.IGNORECASE)


def _why_not_loaded(name: str, args: Mapping[str, Any], exc: Exception) -> str:
    """Why the model could not be loaded: an argument it does not take, a reason of its
    backend's (:class:`ModelNotLoaded`), else the error and where it was raised."""
    if isinstance(exc, ModelNotLoaded):
        return str(exc)
    shown = {k: "***" if _SECRET_ARGUMENT.search(str(k)) else v for k, v in args.items()}
    if args and isinstance(exc, (TypeError, ValueError)):
        return f"{name}: model arguments {shown}: {exc}"
    given = f" with model arguments {shown}" if args else ""
    return (f"{name} could not be loaded{given}: {type(exc).__name__}: {str(exc)[:300]}"
            f"{_raised_at(exc)}")


def _warn_of_dropped_data(dataset) -> None:
    """A warning, once per worker and corpus, where problems in the corpus's files dropped data
    (a malformed block, a duplicate id): the run goes on with the rest, and says so."""
    dropped = [problem for problem in dataset.problems if problem.severity == "error"]
    if dropped:
        warnings.warn(f"{dataset.name} at {dataset.root}: {len(dropped)} problem"
                      f"{'s' if len(dropped) != 1 else ''} in its files dropped data, the first: "
                      f"{str(dropped[0])[:300]}; python -m harness.data check {dataset.name} "
                      f"{shlex.quote(str(dataset.root))} lists them", stacklevel=2)


def _what_to_check(corpus: str, root: str | Path | None, exc: Exception) -> str:
    """What to look at when a corpus cannot be read: the options, the root given, or where
    a root is set (a corpus of one's own has no ``--<corpus>-root``)."""
    from harness.data.loader import BUILT_IN, CORPORA

    flag = f"--{corpus.replace('_', '-')}-root" if corpus in BUILT_IN else None
    if "option" in getattr(exc, "reason", ""):
        return " (check --dataset-option)"
    if root:
        return f" (check {flag})" if flag else ""
    return f" (set {CORPORA[corpus].env_var}{f' or {flag}' if flag else ''})"
