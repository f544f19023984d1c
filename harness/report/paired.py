"""Paired comparison of a strategy's cell with its ``base`` cell: the relative change of a metric's
mean over the items valid in both, with a paired percentile-bootstrap 95% CI, its level taken as
the cell's own CIs' (``metrics.interval``: expanded by default,
:func:`harness.resampling.interval_level`); and its text in the tables and the terminal
(:func:`with_change`, read back by :func:`change_suffix`).

The bootstrap draws the resampled item indexes as :func:`harness.metrics.bootstrap_ci` (scipy)
draws them for the same seed and number of items, but turns each resample into a count per item
(:mod:`harness.resampling`), so every metric of a pair is resampled by one matrix product; and a
build asks for each pair once (:func:`paired_change` remembers the last pairs). A paper-sized
report (189 pairs of 10,000 items) took minutes through scipy's resampling per metric and per
table.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from harness.metrics import LOWER_IS_BETTER, MIN_PAIRED_ITEMS, changed_items
from harness.record import CellRecord
from harness.report.relative import signed_percent
from harness.resampling import interval_level, percentile_ci, resampled_means, resamples_for, sign_flip_p

PAIRED_METRICS = ("js", "bc", "r2")  # the distribution metrics the tables show


@dataclass(frozen=True)
class PairedChange:
    """``change``: percent, positive when the strategy is better (where the base's mean is 0,
    which has no percent, ``relative`` is False and it is the difference itself, positive when
    better); ``low``/``high``: its 95% CI over items resampled in pairs; ``n``: the items valid
    in both cells; ``changed``: those whose score differs between the two
    (:func:`harness.metrics.changed_items`; None: read as ``n``)."""

    base: float
    value: float
    change: float
    low: float
    high: float
    n: int
    changed: int | None = None  # None: not counted (the plain intervals count paired items)
    p: float | None = None  # the paired sign-flip test's (two-sided: twice the smaller side's;
    # 1.0 where the CI includes zero, which is not significant whatever it says)
    relative: bool = True

    @property
    def significant(self) -> bool:
        """The CI of the change excludes zero and the sign-flip test agrees (p ≤ 5%), over
        enough items whose score changed for that to mean anything
        (:data:`~harness.metrics.MIN_PAIRED_ITEMS`); a change without a ``p`` or ``changed``
        (``--interval percentile``, the table as it was) by its CI over enough paired items."""
        changed = self.n if self.changed is None else self.changed
        return (changed >= MIN_PAIRED_ITEMS and bool(self.low > 0 or self.high < 0)
                and (self.p is None or self.p <= 0.05))


# the last pairs asked for, with the two cells themselves: an entry answers only for the very
# objects it was made from (an id alone could be reused by a later build's cells)
_REMEMBERED: OrderedDict[tuple, tuple[CellRecord, CellRecord, dict[str, PairedChange | None]]] = (
    OrderedDict())


def paired_change(base: CellRecord, cell: CellRecord, metric: str, lower_is_better: bool,
                  n_resamples: int = 1000, seed: int = 0) -> PairedChange | None:
    """The change from ``base`` to ``cell`` on their common valid items (None when fewer than
    two items are valid in both)."""
    if metric not in PAIRED_METRICS or LOWER_IS_BETTER[metric] != lower_is_better:
        return _pair(base, cell, (metric,), (lower_is_better,), n_resamples, seed)[metric]
    key = (id(base), id(cell), n_resamples, seed)
    found = _REMEMBERED.get(key)
    if found is None or found[0] is not base or found[1] is not cell:
        found = _REMEMBERED[key] = (base, cell, _pair(
            base, cell, PAIRED_METRICS, tuple(LOWER_IS_BETTER[m] for m in PAIRED_METRICS),
            n_resamples, seed))
        if len(_REMEMBERED) > 64:
            _REMEMBERED.popitem(last=False)
    _REMEMBERED.move_to_end(key)
    return found[2][metric]


def _pair(base: CellRecord, cell: CellRecord, metrics: tuple[str, ...],
          lower: tuple[bool, ...], n_resamples: int, seed: int) -> dict[str, PairedChange | None]:
    """Every metric's change for one pair, each over the items both cells scored on it; the
    metrics scored on the same items (all of them, for a run's records) are resampled together,
    at the level the strategy's cell took its own CIs at."""
    after, before = cell.score_columns().matched(base.score_columns(), metrics)
    valid = np.isfinite(after) & np.isfinite(before)
    groups: dict[bytes, list[int]] = {}
    for k in range(len(metrics)):
        groups.setdefault(np.packbits(valid[:, k]).tobytes(), []).append(k)
    out: dict[str, PairedChange | None] = {}
    for ks in groups.values():
        rows = valid[:, ks[0]]
        b, a = before[rows][:, ks], after[rows][:, ks]
        level = interval_level(0.95, len(b), cell.metrics.interval)
        means = (resampled_means(np.hstack([b, a]), resamples_for(level, n_resamples, 0.95), seed,
                                 keep=True) if len(b) >= 2 else None)
        tested = cell.metrics.interval == "expanded"  # the plain intervals: the table as it was
        for j, k in enumerate(ks):
            change = _change(b[:, j], a[:, j], None if means is None else
                             (means[:, j], means[:, len(ks) + j]), lower[k], level)
            if tested and change is not None:
                change = _tested(change, b[:, j], a[:, j], n_resamples, seed)
            out[metrics[k]] = change
    return out


def _tested(change: PairedChange, before: np.ndarray, after: np.ndarray, n_resamples: int,
            seed: int) -> PairedChange:
    """``change`` with its changed items counted and, where its CI excludes zero (else it is
    not significant whatever the test says: a report of 189 pairs of 10,000 items flips only
    those), the sign-flip test's two-sided p."""
    p = 1.0
    if change.low > 0 or change.high < 0:
        p = min(1.0, 2 * min(sign_flip_p(after - before, resamples_for(0.95, n_resamples), seed)[0]))
    return replace(change, changed=changed_items(before, after), p=p)


def _change(before: np.ndarray, after: np.ndarray, resampled: tuple[np.ndarray, np.ndarray] | None,
            lower_is_better: bool, level: float = 0.95) -> PairedChange | None:
    """One metric's change and its percentile CI at ``level`` from the resampled means (None with
    fewer than two items): in percent, or, where the base's mean is 0 (R² of a model that
    answers one distribution for every item), the difference, whose CI and test stand as well."""
    if resampled is None:
        return None
    sign = -1.0 if lower_is_better else 1.0
    b, a = before.mean(), after.mean()
    if b == 0:
        low, high = percentile_ci(sign * (resampled[1] - resampled[0]), level)
        return PairedChange(float(b), float(a), float(sign * (a - b)), low, high, len(before),
                            relative=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = 100.0 * sign * (resampled[1] - resampled[0]) / resampled[0]
    low, high = percentile_ci(stats, level)
    return PairedChange(float(b), float(a), float(100.0 * sign * (a - b) / b), low, high,
                        len(before))


def with_change(change: PairedChange) -> str:
    """``0.3364 (+6.3*)``: the paired mean and its change against base in %, ``*`` where the
    change's paired bootstrap 95% CI excludes zero and the sign-flip test agrees (over 6 or
    more paired items whose score changed); against a base whose mean is 0, which has no %, the
    difference: ``0.3781 (base 0, +0.3781*)``."""
    star = "*" if change.significant else ""
    if not change.relative:
        return f"{change.value:.4f} (base 0, {change.change + 0.0:+.4f}{star})"
    return f"{change.value:.4f} ({signed_percent(change.change)}{star})"


_CHANGE_SUFFIX = re.compile(r" \((?:[+-]\d+\.\d|base 0, [+-]\d+\.\d{4})\*?\)$")


def change_suffix(text: str) -> str:
    """The `` (+6.3*)`` that :func:`with_change` ends ``text`` with; "" for a value without one."""
    found = _CHANGE_SUFFIX.search(text)
    return found.group(0) if found else ""
