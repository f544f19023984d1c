"""One grid cell: run its strategy over its dataset and write everything to a per-cell JSON file.

The file is written the moment the cell finishes, so a worker that crashes later loses nothing
already computed; the report is rebuilt from these files alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from harness import __version__, baselines, metrics
from harness.data import Dataset
from harness.grid import CHANCE_MODELS, Cell, file_stem
from harness.prompts import templates_hash
from harness.strategies import ItemResult, StrategyConfig, decoding_for, rule_counts, run_strategy

N_BINS = 5


def stratified_subsample(dataset: Dataset, limit: int | None) -> Dataset:
    """``limit`` items spread evenly over the entropy-sorted corpus (deterministic)."""
    if limit is None or limit >= len(dataset):
        return dataset
    order = sorted(range(len(dataset)), key=lambda i: (dataset[i].entropy, dataset[i].id))
    picks = np.unique(np.round(np.linspace(0, len(order) - 1, limit)).astype(int))
    return dataset.subset(sorted(order[i] for i in picks))


def predict(cell: Cell, dataset: Dataset, model, *, verifier=None, cache=None,
            config: StrategyConfig | None = None, progress=None) -> list[ItemResult]:
    """The cell's per-item results (chance baselines need no model)."""
    if cell.model in CHANCE_MODELS:
        probs = baselines.predict(cell.model, dataset)
        return [ItemResult(item.id, probs=p, rule="chance") for item, p in zip(dataset, probs)]
    return run_strategy(cell.strategy, model, dataset, config=config, cache=cache,
                        verifier=verifier, progress=progress)


def summarize_cell(dataset: Dataset, results: list[ItemResult], n_resamples: int = 1000,
                   seed: int = 0) -> dict:
    """Metrics with CIs, validity, rule counts, entropy-bin medians and counts, cost."""
    k = len(dataset.labels)
    pred = np.array([r.probs if r.valid else np.full(k, np.nan) for r in results]).reshape(-1, k)
    summary = metrics.summarize(dataset.votes, pred, n_resamples=n_resamples, seed=seed)
    summary["rules"] = {str(rule): n for rule, n in rule_counts(results).items()}
    summary["errors"] = sum(r.error is not None for r in results)
    summary["noted"] = sum(bool(r.notes) for r in results)
    summary["bins"] = _bins(dataset, pred)
    summary["tokens"] = int(sum(r.tokens for r in results))
    costs = [r.usage.get("cost_usd") for r in results if r.usage]
    summary["cost_usd"] = None if any(c is None for c in costs) else float(sum(costs))
    return summary


def _bins(dataset: Dataset, pred: np.ndarray) -> dict:
    h = np.array([item.entropy for item in dataset])
    index, edges = metrics.entropy_bins(h, N_BINS)
    valid = np.isfinite(pred).all(axis=1)
    out = {"edges": edges.tolist(), "counts": np.bincount(index, minlength=N_BINS).tolist()}
    if valid.any():
        scores = metrics.per_item(dataset.votes[valid], pred[valid])
        for name, values in scores.items():
            medians, _ = metrics.binned_medians(values, index[valid], N_BINS)
            out[name] = [None if np.isnan(m) else float(m) for m in medians]
    return out


def run_cell(cell: Cell, dataset: Dataset, model=None, *, verifier=None, cache=None,
             config: StrategyConfig | None = None, n_resamples: int = 1000,
             progress=None) -> dict:
    """Run the cell and return its full record (metrics, per-item predictions, metadata)."""
    config = config or StrategyConfig()
    start = time.perf_counter()
    results = predict(cell, dataset, model, verifier=verifier, cache=cache, config=config,
                      progress=progress)
    seconds = time.perf_counter() - start
    info = getattr(model, "info", None)
    on_gpu = info is not None and str(info.device).startswith("cuda")
    return {
        "cell": cell.id, "model": cell.model, "dataset": cell.dataset, "strategy": cell.strategy,
        "labels": list(dataset.labels),
        "metrics": summarize_cell(dataset, results, n_resamples, config.seed),
        "seconds": seconds, "gpu_seconds": seconds if on_gpu else 0.0,
        "items": [{"id": r.item_id, "probs": None if r.probs is None else r.probs.tolist(),
                   "rule": r.rule, "reason": r.reason, "error": r.error, "tokens": r.tokens,
                   "notes": r.notes}
                  for r in results],
        "meta": _metadata(cell, dataset, info, verifier, config),
    }


def _metadata(cell: Cell, dataset: Dataset, info, verifier, config: StrategyConfig) -> dict:
    decoding = None
    if cell.model not in CHANCE_MODELS:
        decoding = json.loads(decoding_for(cell.strategy, config, dataset.labels).key())
    return {
        "model": None if info is None else {"name": info.name, "revision": info.revision,
                                            "dtype": info.dtype, "device": info.device},
        "verifier": None if verifier is None else verifier.info.name,
        "dataset": {"name": dataset.name, "root": str(dataset.root), "n_items": len(dataset),
                    "manifest": dataset.manifest_hash(), "options": dataset.options},
        "prompts": templates_hash(), "decoding": decoding, "seed": config.seed,
        "versions": _versions(), "git_commit": _git_commit(),
        "host": platform.node(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _versions() -> dict:
    import importlib.metadata as md

    out = {"harness": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "torch", "transformers", "openai", "google-genai"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_cell(record: dict, run_dir: Path) -> Path:
    """Write ``<run_dir>/cells/<cell>.json`` atomically; returns the path."""
    folder = Path(run_dir) / "cells"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_stem(record['cell'])}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    return path
