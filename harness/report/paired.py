"""Paired comparison of a strategy's cell with its ``base`` cell: the relative change of a metric's
mean over the items valid in both, with a paired percentile-bootstrap 95% CI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics import bootstrap_ci
from harness.record import CellRecord


@dataclass(frozen=True)
class PairedChange:
    """``change``: percent, positive when the strategy is better; ``low``/``high``: its 95% CI
    over items resampled in pairs; ``n``: the items valid in both cells."""

    base: float
    value: float
    change: float
    low: float
    high: float
    n: int

    @property
    def significant(self) -> bool:
        """The CI of the change excludes zero."""
        return bool(self.low > 0 or self.high < 0)


def paired_scores(base: CellRecord, cell: CellRecord, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The metric's per-item values in both cells, over the items valid in both (by id)."""
    theirs = {i.id: i.scores[metric] for i in base.items if i.scores and metric in i.scores}
    ours = {i.id: i.scores[metric] for i in cell.items if i.scores and metric in i.scores}
    ids = [i for i in theirs if i in ours]
    return np.array([theirs[i] for i in ids]), np.array([ours[i] for i in ids])


def paired_change(base: CellRecord, cell: CellRecord, metric: str, lower_is_better: bool,
                  n_resamples: int = 1000, seed: int = 0) -> PairedChange | None:
    """The change from ``base`` to ``cell`` on their common valid items (None when fewer than
    two items are valid in both, or the base mean is 0)."""
    before, after = paired_scores(base, cell, metric)
    if len(before) < 2 or before.mean() == 0:
        return None
    sign = -1.0 if lower_is_better else 1.0

    def relative(b: np.ndarray, a: np.ndarray, axis: int = -1) -> np.ndarray:
        return 100.0 * sign * (a.mean(axis=axis) - b.mean(axis=axis)) / b.mean(axis=axis)

    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = bootstrap_ci(before, after, statistic=relative, n_resamples=n_resamples,
                                 seed=seed)
    return PairedChange(float(before.mean()), float(after.mean()),
                        float(relative(before, after)), low, high, len(before))
