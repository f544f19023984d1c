"""``evaluate``: one model on one dataset under one strategy, to a :class:`CellRecord`.

The one way in: the pytest grid, ``python -m harness.report``'s callers and the README's example
all go through it. It runs the strategy (through the generation cache), summarises the metrics
with their CIs, and records what the numbers are comparable with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import platform
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import metrics
from harness._values import whole_number
from harness._version import __version__
from harness.baselines import ChanceBaseline, annotator
from harness.cache import GenerationCache
from harness.data import Dataset, load_dataset
from harness.models import ModelAPI
from harness.models.deferred import deferred_model, work_clock
from harness.prompts import prompts_record
from harness.record import CellMetrics, CellRecord, ItemRecord
from harness.resampling import checked_interval
from harness.runner.evidence import evidence_header
from harness.runner.invalid import read_invalid
from harness.runner.outcomes import CellItems, Outcome, answered, outcome, verifier_use
from harness.runner.sensitivity import (
    alpha_sensitivity,
    invalid_sensitivity,
    ties_sensitivity,
)
from harness.strategies import (
    ItemResult,
    Strategy,
    StrategyConfig,
    StrategyUnsupported,
    as_config,
    get_strategy,
    iter_strategy,
)

N_BINS = 5


def evaluate(model: str | ModelAPI | ChanceBaseline, dataset: str | Dataset,
             strategy: str | Strategy = "base", *, verifier: str | ModelAPI | None = None,
             config: StrategyConfig | Mapping[str, Any] | None = None,
             cache: GenerationCache | str | os.PathLike[str] | None = None,
             progress: Callable[[int], None] | None = None, n_resamples: int = 1000,
             entropy_bins: str = "width", interval: str = "expanded") -> CellRecord:
    """Run ``strategy`` with ``model`` over ``dataset`` and return the cell's record.

    Args:
        model: A registry name (``"tiny-qwen2-audio"``, ``"uniform"``) or a built model.
        dataset: A corpus name (loaded with its defaults) or a :class:`Dataset`.
        strategy: A registered strategy name or a :class:`Strategy`.
        verifier: The model that scores candidates, for strategies that need one.
        config: The strategies' knobs (seed included; the bootstrap uses the same seed): a
            :class:`StrategyConfig` or a mapping of its fields (``{"beams": 3}``).
        cache: A :class:`GenerationCache`, or the path of its SQLite file.
        progress: Called with the number of items generated as the run advances.
        n_resamples: Bootstrap resamples for each metric's 95% CI.
        entropy_bins: The five ambiguity levels: ``"width"`` (equal-width over the entropies
            observed) or ``"quantile"`` (equal-count, the paper's "five equal groups" read as
            equal in size).
        interval: How each CI's level is taken: ``"expanded"`` (Hesterberg's expanded
            percentile interval, as wide as Student's t interval over few items) or
            ``"percentile"`` (the plain interval; :func:`harness.resampling.interval_level`).

    Raises:
        StrategyUnsupported: the model (or a missing verifier) cannot run the strategy.
        ModelUnavailable: a model named here cannot be built on this machine.
        NothingToEvaluate: the corpus holds no item (what the loader left out, said).
    """
    whole_number("n_resamples", n_resamples)  # refused before any model runs, not in the bootstrap
    checked_interval(interval)  # refused before any model runs too
    config = as_config(config)  # a misnamed knob, too, is refused before a model is built
    model = deferred_model(model) if isinstance(model, str) else model  # loaded when needed
    verifier = deferred_model(verifier) if isinstance(verifier, str) else verifier
    dataset = load_dataset(dataset) if isinstance(dataset, str) else dataset
    strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
    held_out, dataset = _annotator_split(model, dataset, config.seed)
    _check_not_empty(dataset)
    level = metrics.entropy_bins(np.array([item.entropy for item in dataset]), N_BINS, entropy_bins)[0]
    with _opened(cache) as store, _calls_counted(store) as generations:
        sink = CellItems(dataset, level)  # its spool lives on in the record's evidence
        seconds = _run_into(sink, _predict(model, dataset, strategy, verifier, config, store,
                                           progress, held_out), (model, verifier))
    on_gpu = not isinstance(model, ChanceBaseline) and str(model.info.device).startswith("cuda")
    outcomes = sink.outcomes
    scores = item_scores(dataset, outcomes)  # once, for the bins and the items' records
    per_item = _per_item(dataset, outcomes, scores)
    prompts = None if isinstance(model, ChanceBaseline) else config.prompts
    return CellRecord(
        cell=f"{model.info.name}-{dataset.name}-{strategy.name}", model=model.info.name,
        dataset=dataset.name, strategy=strategy.name, labels=tuple(dataset.labels),
        metrics=summarize_cell(dataset, outcomes, n_resamples, config.seed, entropy_bins, scores,
                               interval),
        seconds=seconds, gpu_seconds=seconds if on_gpu else 0.0,
        items=_item_records(outcomes, per_item),
        meta={**_metadata(model, dataset, strategy, verifier, config), **generations},
        evidence=sink.evidence(evidence_header(strategy, dataset, prompts), per_item))


class NothingToEvaluate(ValueError):
    """A corpus with no item to evaluate: its options, label files or ``--limit`` left none."""


def _check_not_empty(dataset: Dataset) -> None:
    if len(dataset):
        return
    left = dataset.left_out()
    reasons = sorted(left["skipped"].items(), key=lambda pair: -pair[1])
    skipped = "; ".join(f"{reason}: {n}" for reason, n in reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    said = [f"{sum(left['skipped'].values())} items left out on purpose ({skipped})" if reasons else "",
            f"{left['problems']['error']} problems that dropped data, the first: "
            f"{left['first_problems'][0]}" if left["first_problems"] else ""]
    why = "; ".join(s for s in said if s) or "its label files list none"
    raise NothingToEvaluate(f"{dataset.name}: no item to evaluate; the loader kept none of "
                            f"{dataset.root}: {why}")


def _annotator_split(model: ModelAPI | ChanceBaseline, dataset: Dataset, seed: int
                     ) -> tuple[np.ndarray | None, Dataset]:
    """For the annotator reference, each item's held-out rater's choice and the dataset with the
    other raters' votes, against which that choice is scored; else ``(None, dataset)``."""
    if not (isinstance(model, ChanceBaseline) and model.info.name == "annotator"):
        return None, dataset
    held_out, targets = annotator(dataset, seed)
    return held_out, dataset.with_votes(targets)


def _opened(cache: GenerationCache | str | os.PathLike[str] | None
            ) -> contextlib.AbstractContextManager[GenerationCache | None]:
    """The cache, opened here and closed after when it is given as a path."""
    if isinstance(cache, (str, os.PathLike)):
        return contextlib.closing(GenerationCache(Path(cache)))
    return contextlib.nullcontext(cache)


@contextlib.contextmanager
def _calls_counted(store: GenerationCache | None) -> Iterator[dict[str, Any]]:
    """``{"generations": {"computed": n, "from_cache": m}}`` once the block is done: the model
    calls the cell computed and those it read from the cache (computed by a cell sharing them,
    a plan or an earlier run), so that its seconds say what they cost, and ``"served_by"``
    (:func:`_by_model`) where its answers named the model that gave them; ``{}`` without a
    cache."""
    counted: dict[str, Any] = {}
    hits, misses = (store.hits, store.misses) if store is not None else (0, 0)
    served = Counter(store.served) if store is not None else Counter()
    yield counted
    if store is not None:
        counted["generations"] = {"computed": store.misses - misses,
                                  "from_cache": store.hits - hits}
        if answered_as := _by_model(store.served - served):
            counted["served_by"] = answered_as


def _by_model(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """``{"gpt-4o": {"gpt-4o-audio-preview-2024-12-17": 26}}``: for each model whose answers
    named the model that gave them (an API's snapshot), how many of the cell's came under each
    name (its verifier's included, under the verifier's name)."""
    out: dict[str, dict[str, int]] = {}
    for (model, name), n in sorted(counts.items()):
        out.setdefault(model, {})[name] = n
    return out


def _run_into(sink: CellItems, chunks: Iterator[list[ItemResult]], models: tuple = ()) -> float:
    """Feed ``sink`` every chunk of results; the seconds that took, less any spent loading
    ``models`` (a model loaded at its first call: :func:`~harness.models.deferred.work_clock`).
    Whatever stops the run, the sink's spool is closed before it goes on up."""
    try:
        start = work_clock(*models)
        for chunk in chunks:
            sink.add(chunk)
        return work_clock(*models) - start
    except BaseException:
        sink.close()
        raise


def _predict(model: ModelAPI | ChanceBaseline, dataset: Dataset, strategy: Strategy,
             verifier: ModelAPI | None, config: StrategyConfig, cache: GenerationCache | None,
             progress: Callable[[int], None] | None, held_out: np.ndarray | None = None
             ) -> Iterator[list[ItemResult]]:
    """The per-item results, a chunk at a time, each answer without a distribution read as
    ``config.invalid`` says (chance baselines need no prompt and run under one strategy)."""
    if isinstance(model, ChanceBaseline):
        if not strategy.chance_cell:
            raise StrategyUnsupported(f"{model.info.name} is a chance baseline: it runs only as "
                                      f"the chance cell, not under {strategy.name}")
        yield [ItemResult(item.id, rule="chance", reason="fewer than two raters")
               if np.isnan(p).any() else ItemResult(item.id, probs=p, rule="chance")
               for item, p in zip(dataset, model.predict(dataset) if held_out is None
                                  else held_out)]
        if progress is not None:  # as a model's run reports its items
            progress(len(dataset))
        return
    for chunk in iter_strategy(strategy, model, dataset, config=config, cache=cache,
                               verifier=verifier, progress=progress):
        yield read_invalid(chunk, config.invalid, len(dataset.labels))


ItemScores = tuple[np.ndarray, dict[str, np.ndarray]]  # valid items' indexes, metric -> values


Results = Sequence[ItemResult | Outcome]


def item_scores(dataset: Dataset, results: Results) -> ItemScores:
    """Each valid item's JS, JSD, BC and R² (:func:`harness.metrics.per_item`), by index."""
    valid = np.array([i for i, r in enumerate(results) if r.probs is not None], dtype=int)
    if valid.size == 0:
        return valid, {}
    pred = np.array([results[i].probs for i in valid])
    return valid, metrics.per_item(dataset.votes[valid], pred)


def _per_item(dataset: Dataset, results: Results, scores: ItemScores
              ) -> dict[int, dict[str, float]]:
    """A valid item's metrics and accuracy, by item index."""
    valid, values = scores
    if valid.size:  # the distribution metrics computed once already; accuracy added to them
        values = {**values, "acc": metrics.accuracy_per_item(
            dataset.votes[valid], np.array([results[i].probs for i in valid]))}
    return {int(i): {name: float(v[n]) for name, v in values.items()} for n, i in enumerate(valid)}


def _item_records(outcomes: Sequence[Outcome], per_item: dict[int, dict[str, float]]
                  ) -> tuple[ItemRecord, ...]:
    """Each item's record; a valid item's carries its per-item metrics and accuracy, which the
    report pairs across strategies and the gate and ``compare`` pair across runs."""
    return tuple(o.row.with_scores(per_item.get(i)) for i, o in enumerate(outcomes))


def stratified_subsample(dataset: Dataset, limit: int | None) -> Dataset:
    """``limit`` items spread evenly over the entropy-sorted corpus (deterministic): its least
    and most ambiguous items, then the others in the bit-reversed order of their rank (the
    one halfway, then those a quarter and three quarters of the way, and so on: the van der
    Corput sequence over the ranks). A smaller limit's items are therefore among a larger
    one's: a run at ``--limit 200`` finds the generations of one at 100 in the cache, and the
    two compare on those 100 items."""
    if limit is None or limit >= len(dataset):
        return dataset
    order = sorted(range(len(dataset)), key=lambda i: (dataset[i].entropy, dataset[i].id))
    last = len(order) - 1
    ranks = np.argsort(_bits_reversed(len(order)), kind="stable")
    picks = np.concatenate([[0, last], ranks[(ranks != 0) & (ranks != last)]])[:limit]
    return dataset.subset(sorted(order[i] for i in picks))


def _bits_reversed(count: int) -> np.ndarray:
    """Each of ``0 .. count - 1`` with its binary digits mirrored (as many digits as the largest
    needs): sorting by it visits the ranks in van der Corput order."""
    bits = max(1, (count - 1).bit_length())
    rank, out = np.arange(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    for _ in range(bits):
        out = (out << 1) | (rank & 1)
        rank >>= 1
    return out


def summarize_cell(dataset: Dataset, results: Results, n_resamples: int = 1000,
                   seed: int = 0, entropy_bins: str = "width",
                   scores: ItemScores | None = None, interval: str = "expanded") -> CellMetrics:
    """Metrics with CIs, validity, rule counts, entropy-bin medians and counts, cost
    (``results``: item results or their outcomes; ``scores``: :func:`item_scores`, when the
    caller has them already; ``interval``: how the CIs' level is taken)."""
    outcomes = [outcome(r) for r in results]
    k = len(dataset.labels)
    pred = np.array([o.probs if o.valid else np.full(k, np.nan) for o in outcomes]).reshape(-1, k)
    summary = metrics.summarize(dataset.votes, pred, n_resamples=n_resamples, seed=seed,
                                interval=interval)
    if (own := answered(outcomes)).sum() < summary["n_valid"]:  # some filled in: invalid=uniform
        summary["n_valid"], summary["valid"] = int(own.sum()), float(own.mean())
    summary["rules"] = {str(rule): n for rule, n in
                        Counter(o.row.rule for o in outcomes if o.row.error is None).items()}
    summary["errors"] = sum(o.row.error is not None for o in outcomes)
    summary["noted"] = sum(bool(o.row.notes) for o in outcomes)
    summary["no_transcript"] = sum(not item.transcript.strip() for item in dataset)
    summary["verifier_unscored"] = sum(o.verifier_unscored for o in outcomes)
    summary["verifier"] = verifier_use(outcomes)
    if summary["verifier"] and any(o.tie_preds is not None for o in outcomes):  # an alm-v cell
        summary["verifier"]["ties"] = ties_sensitivity(dataset, outcomes, n_resamples, seed,
                                                       interval)
    summary["bins"] = _bins(dataset, scores or item_scores(dataset, outcomes), entropy_bins)
    summary["tokens"] = int(sum(o.row.tokens for o in outcomes))
    if invalid := invalid_sensitivity(dataset, outcomes, n_resamples, seed, interval):
        summary["invalid"] = invalid  # each reading of the invalid items
    if any(o.alpha_preds is not None for o in outcomes):  # a w-bon cell
        summary["alpha_sensitivity"] = alpha_sensitivity(dataset, outcomes, n_resamples, seed,
                                                         interval)
    costs = [o.cost for o in outcomes if o.has_usage]
    summary["cost_usd"] = None if any(c is None for c in costs) else float(sum(c for c in costs if c))
    return CellMetrics.from_json(summary)


def _bins(dataset: Dataset, scores: ItemScores, method: str) -> dict[str, Any]:
    h = np.array([item.entropy for item in dataset])
    index, edges = metrics.entropy_bins(h, N_BINS, method)
    out: dict[str, Any] = {"method": method, "edges": edges.tolist(),
                           "counts": np.bincount(index, minlength=N_BINS).tolist()}
    valid, values = scores
    for name, column in values.items():
        medians, _ = metrics.binned_medians(column, index[valid], N_BINS)
        out[name] = [None if np.isnan(m) else float(m) for m in medians]
        out[f"{name}_ci"] = [[low, high] if math.isfinite(low + high) else None for low, high in
                             metrics.binned_median_intervals(column, index[valid], N_BINS)]
    return out


def _metadata(model: ModelAPI | ChanceBaseline, dataset: Dataset, strategy: Strategy,
              verifier: ModelAPI | None, config: StrategyConfig) -> dict[str, Any]:
    chance = isinstance(model, ChanceBaseline)
    info = None if chance else model.info
    decoding = None if chance else json.loads(strategy.decoding(config, dataset.labels).key())
    return {
        "model": None if info is None else {"name": info.name, "revision": info.revision,
                                            "dtype": info.dtype, "device": info.device,
                                            "options": dict(info.options)},
        "verifier": None if verifier is None else verifier.info.name,
        "verifier_revision": None if verifier is None else verifier.info.revision,
        "dataset": {"name": dataset.name, "root": str(dataset.root), "n_items": len(dataset),
                    "drawn_from": dataset.drawn_from, "manifest": dataset.manifest_hash(),
                    "options": dataset.options, "left_out": dataset.left_out()},
        "prompts": prompts_record(config.prompts, dataset.name), "decoding": decoding, "seed": config.seed,
        "strategy_config": dataclasses.asdict(config),
        "versions": _versions(), "git_commit": _git_commit(),
        "host": platform.node(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _versions() -> dict[str, str]:
    return dict(_installed_versions())


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """The packages' versions, read once per process (12 ms a cell otherwise): what the process
    imported is what it runs, whatever is installed later."""
    import importlib.metadata as md

    out = {"harness": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "torch", "transformers", "openai", "google-genai"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return tuple(out.items())


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The commit the harness was checked out at, read once per process, as the versions are
    (a process runs the code it imported, whatever is committed later)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
