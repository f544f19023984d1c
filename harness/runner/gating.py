"""Regression gating: is a cell significantly worse than its recorded baseline?

The baseline keeps per-item predictions. On the items valid in both runs, a paired bootstrap of
the mean per-item change gives a 95% interval; a cell fails when the whole interval lies on the
worse side of ``tolerance`` (JS/JSD up, BC/R² down, accuracy down).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness import metrics
from harness.record import CellRecord, file_stem

GATED = ("js", "jsd", "bc", "r2", "acc")
# Below this, a change of a metric's mean is numerical noise, never a regression: the embedded
# default's float32 outputs recomputed on another CPU moved probabilities by up to 5e-7 and per-item
# scores by less, often all the same way, and a bootstrap over such changes excludes zero while
# saying nothing (the report prints metrics to four decimals).
NOISE = 1e-6


def baseline_path(folder: Path, cell_id: str) -> Path:
    """Where a cell's baseline lives (one place, so saving and gating agree)."""
    return Path(folder) / f"{file_stem(cell_id)}.json"


def save_baseline(record: CellRecord, folder: Path) -> Path:
    """Record the cell's per-item predictions as its new baseline."""
    folder.mkdir(parents=True, exist_ok=True)
    path = baseline_path(folder, record.cell)
    path.write_text(json.dumps({"cell": record.cell, "labels": list(record.labels),
                                "items": [{"id": i.id, "probs": None if i.probs is None else list(i.probs)}
                                          for i in record.items]}, indent=1))
    return path


def _per_item(votes: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    scores = metrics.per_item(votes, probs)
    # accuracy as the tables report it: ties in the votes to the first label, every item
    scores["acc"] = (probs.argmax(axis=1) == metrics.majority_or_first(votes)).astype(float)
    return scores


def regressions(record: CellRecord, votes: dict[str, np.ndarray], baseline_path: Path,
                tolerance: float = 0.0, n_resamples: int = 1000, seed: int = 0) -> list[str]:
    """Messages for every gated metric that got significantly worse (empty: no regression).

    Args:
        record: The cell's record from :func:`harness.evaluate`.
        votes: Annotator votes per item id.
        baseline_path: The cell's baseline file.
        tolerance: How much worse (in the metric's units) is still accepted.
    """
    baseline = json.loads(Path(baseline_path).read_text())
    old = {i["id"]: i["probs"] for i in baseline["items"] if i["probs"] is not None}
    new = {i.id: i.probs for i in record.items if i.probs is not None}
    ids = sorted(set(old) & set(new) & set(votes))
    if len(ids) < 2:
        return []
    v = np.array([votes[i] for i in ids])
    before, after = _per_item(v, np.array([old[i] for i in ids])), _per_item(
        v, np.array([new[i] for i in ids]))
    failures = []
    for name in GATED:
        keep = np.isfinite(before[name]) & np.isfinite(after[name])
        if keep.sum() < 2:
            continue
        diff = after[name][keep] - before[name][keep]
        low, high = metrics.bootstrap_ci(diff, n_resamples=n_resamples, seed=seed)
        bound = tolerance + NOISE
        worse = low > bound if metrics.LOWER_IS_BETTER[name] else high < -bound
        if worse:
            failures.append(f"{name}: baseline {before[name][keep].mean():.4f} -> "
                            f"{after[name][keep].mean():.4f}, 95% CI of the change "
                            f"[{low:+.4f}, {high:+.4f}] on {int(keep.sum())} items")
    return failures
