"""Regression gating: is a cell significantly worse than its recorded baseline?

The baseline keeps per-item predictions and scores, and what produced them (the model revision and
the other inputs). On the items valid in both, a paired bootstrap of the mean per-item change gives
each gated metric an interval; a metric is worse when the whole interval lies on the worse side of
``tolerance`` (JS/JSD up, BC/R²/accuracy down), better when it lies on the better side, else not
significantly different; on fewer paired items whose score changed than :func:`items_needed`,
never worse nor better. A cell fails when any gated metric is worse; a model update (another
revision than the baseline's) is judged by this alone, its snapshot being keyed by revision.

The intervals hold the cell's metrics together (Bonferroni): with ``alpha`` 5% and 5 metrics each
is a 98% interval, so that an update that changes nothing systematically fails a cell at most
about 5% of the time. Each is taken, by default, as the expanded percentile interval
(:func:`harness.resampling.interval_level`): the plain percentile interval runs narrow on few
items; and a verdict needs the paired sign-flip test too, exact however few items changed. In
simulation (``python -m bench.gate_null``), such cells of 8 items failed 2.5% of the time with
expanded intervals and the sign-flip test, 10.9% with plain intervals alone; of 30 items, 3.1%
and 6.0%; of 200 of which 7 changed, 2.7%, where the expanded CI alone failed 6.9%. A run of C
cells still fails about alpha·C of them by chance: ``alpha`` = 0.05/C holds the run as a whole
to about 5% (at the cost of more resamples).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import metrics
from harness.record import CellRecord, input_changes, inputs_of
from harness.resampling import mean_cis, resamples_for, sign_flip_p
from harness.runner.baseline_file import item_scores, read_baseline

GATED = ("js", "jsd", "bc", "r2", "acc")
# Below this, a change of a metric's mean is numerical noise, never a regression (float32 outputs
# recomputed on another CPU move per-item scores by less, often all the same way, and a bootstrap
# over such changes excludes zero while saying nothing); an item's score changing by less is no
# change (metrics.changed_items).
NOISE = metrics.SCORE_NOISE
GATE_ALPHA = 0.05  # how often a cell whose update changed nothing systematically may fail
ItemScores = Mapping[str, Mapping[str, float]]  # item id -> metric -> value


@dataclass(frozen=True)
class MetricChange:
    """One metric from a baseline to a run, over ``n`` items valid in both (paired).

    ``low``/``high``: the CI of the mean per-item difference (new − baseline), in the metric's
    units, at ``confidence`` (the cell's metrics together at 1 − alpha: :func:`paired_changes`);
    ``verdict``: ``worse``, ``better`` or ``same`` (not significantly different); ``changed``:
    of the ``n``, the items whose score moved (:func:`harness.metrics.changed_items`; None:
    not counted, read as ``n``).
    """

    metric: str
    before: float
    after: float
    low: float
    high: float
    n: int
    verdict: str
    confidence: float = 0.95
    needed: int = metrics.MIN_PAIRED_ITEMS  # changed items below which never worse nor better
    changed: int | None = None
    # the sign-flip test's one-sided p of a change this far worse (better): 1.0 where the CI
    # includes zero (not tested: no verdict follows), NaN under the plain intervals
    p_worse: float = math.nan
    p_better: float = math.nan

    def describe(self) -> str:
        moved = "" if self.changed in (None, self.n) else f", {self.changed} of them changed"
        flip = "" if math.isnan(self.p_worse) else f" (sign-flip p {self.p_worse:.2g})"
        return (f"{self.metric}: baseline {self.before:.4f} -> {self.after:.4f}, "
                f"{percent(self.confidence)} CI of the change [{self.low:+.4f}, {self.high:+.4f}] "
                f"on {self.n} paired items{moved}{flip}")

    @property
    def items_changed(self) -> int:
        return self.n if self.changed is None else self.changed


def by_chance(cells: int, alpha: float, called: str = "be called worse",
              unless: str = "were nothing changed") -> str:
    """``were nothing changed, up to about 9 would be called worse by chance, each held to 5%
    alone: --gate-alpha 0.000264 holds all 189 to 5% together``: what chance gives over
    ``cells`` each held to ``alpha`` alone, and the level that holds them together; "" where it
    would give fewer than one such cell in two runs."""
    if alpha * cells < 0.5:
        return ""
    return (f"{unless}, up to about {alpha * cells:.0f} would {called} by chance, "
            f"each held to {percent(alpha)} alone: --gate-alpha {_rounded_down(alpha / cells)} "
            f"holds all {cells} to {percent(alpha)} together")


def _rounded_down(share: float) -> str:
    """``0.000264`` for 0.05 / 189: three significant digits, rounded down so that the level
    named holds the cells to no more than the whole's."""
    digits = 2 - math.floor(math.log10(share))
    return f"{math.floor(share * 10 ** digits + 1e-9) / 10 ** digits:.3g}"


def percent(share: float) -> str:
    """``98%``, ``97.5%``, ``99.99%``."""
    return f"{100 * share:.6g}%"


def items_needed(confidence: float) -> int:
    """The fewest paired items whose score changed on which a change can be significant at
    ``confidence``: n with 2^-n, the exact sign-flip test's smallest one-sided p-value (over the
    items that changed: one that did not flips nothing), within an interval's tail (7 at 98%,
    whose tail is 1%), and never fewer than :data:`~harness.metrics.MIN_PAIRED_ITEMS`."""
    tail = (1 - confidence) / 2
    return max(metrics.MIN_PAIRED_ITEMS, math.ceil(-math.log2(tail) - 1e-9))


def family_confidence(alpha: float, metrics_tested: int) -> float:
    """Each metric's interval level so that the cell's metrics hold together at 1 − ``alpha``
    (Bonferroni, one side each: 1 − 2·alpha/m; 98% for 5 metrics at 5%)."""
    if not 0 < alpha <= 0.5:
        raise ValueError(f"alpha must be above 0 and at most 0.5, not {alpha!r}")
    return 1 - 2 * alpha / max(1, metrics_tested)


def paired_changes(old: ItemScores, new: ItemScores, tolerance: float = 0.0,
                   names: tuple[str, ...] = GATED, n_resamples: int = 1000,
                   seed: int = 0, alpha: float = GATE_ALPHA, interval: str = "expanded"
                   ) -> list[MetricChange]:
    """Each metric's paired change on the items scored in both (metrics with < 2 such items are
    left out), its interval at :func:`family_confidence` of the metrics compared (its level taken
    as ``interval`` says: :func:`harness.resampling.interval_level`), from at least
    ``n_resamples`` resamples (more where the interval's ends need them: 2,000 at 98%)."""
    pairs = {}
    for name in names:
        ids = [i for i in old if name in old[i] and i in new and name in new[i]]
        before = np.array([old[i][name] for i in ids], dtype=float)
        after = np.array([new[i][name] for i in ids], dtype=float)
        keep = np.isfinite(before) & np.isfinite(after)
        if keep.sum() >= 2:
            pairs[name] = (before[keep], after[keep])
    confidence = family_confidence(alpha, len(pairs))
    diffs = {name: after - before for name, (before, after) in pairs.items()}
    intervals = _intervals(diffs, n_resamples, seed, confidence, interval)
    flips = resamples_for(confidence, n_resamples)

    def flip(name: str) -> tuple[float, float] | None:
        """The sign-flip test's p-values, where the CI excludes zero (else no verdict follows)."""
        low, high = intervals[name]
        if interval != "expanded":
            return None  # the plain intervals: the CI alone, as the gate was
        return sign_flip_p(diffs[name], flips, seed)[0] if low > 0 or high < 0 else (1.0, 1.0)

    return [_change(name, before, after, tolerance, confidence, intervals[name], flip(name))
            for name, (before, after) in pairs.items()]


def _intervals(diffs: dict[str, np.ndarray], n_resamples: int, seed: int, confidence: float,
               interval: str = "expanded") -> dict[str, tuple[float, float]]:
    """Each metric's percentile-bootstrap CI of its mean change, as
    :func:`harness.metrics.bootstrap_ci` gives it: its draws depend on the number of items and
    the seed alone, so the metrics over as many items (the five, as a rule) share one draw where
    each took its own."""
    groups: dict[int, list[str]] = {}
    for name, diff in diffs.items():
        groups.setdefault(len(diff), []).append(name)
    out: dict[str, tuple[float, float]] = {}
    for names in groups.values():
        cis = mean_cis(np.column_stack([diffs[n] for n in names]), n_resamples, seed, confidence,
                       interval)
        out.update(zip(names, cis))
    return out


def _change(name: str, before: np.ndarray, after: np.ndarray, tolerance: float,
            confidence: float, interval: tuple[float, float],
            flip: tuple[float, float] | None) -> MetricChange:
    """Worse (better): the CI lies wholly on the worse (better) side, and the sign-flip test
    (``flip``: its p-values up and down) agrees at the CI's tail, over enough items that
    changed; with no ``flip`` (the plain percentile intervals, as the gate was before), the CI
    alone over enough paired items."""
    low, high = interval
    sign = 1.0 if metrics.LOWER_IS_BETTER[name] else -1.0  # > 0: worse
    p_worse, p_better = (math.nan, math.nan) if flip is None else flip if sign > 0 else flip[::-1]
    tail = (1 - confidence) / 2
    needed = items_needed(confidence)
    changed = None if flip is None else metrics.changed_items(before, after)  # None: not counted
    enough = (len(before) if changed is None else changed) >= needed
    worse = (enough and min(sign * low, sign * high) > tolerance + NOISE
             and not p_worse > tail)
    better = enough and max(sign * low, sign * high) < -NOISE and not p_better > tail
    return MetricChange(name, float(before.mean()), float(after.mean()), low, high, len(before),
                        "worse" if worse else "better" if better else "same", confidence, needed,
                        changed, p_worse, p_better)


@dataclass(frozen=True)
class GateVerdict:
    """A cell against its baseline: ``failures`` (one line per worse metric, or one saying the
    two could not be compared) and a ``summary``. ``scored``: of the baseline's scored items,
    how many the run holds, and how many of those it scored (2 or more held and fewer than 2
    scored: the run's items failed, which is not "not worse"; another item set holds none)."""

    cell: str
    revision: str | None
    baseline_revision: str | None
    changes: tuple[MetricChange, ...]
    scored: tuple[int, int] = (0, 0)
    other_inputs: tuple[str, ...] = ()  # what the run was given unlike the baseline (input_changes)

    @property
    def failures(self) -> list[str]:
        held, scored = self.scored
        if not self.changes and held >= 2:  # the run's items failed: not "not worse"
            return [f"not compared: the run scored {scored} of the {held} items the baseline "
                    "scored, fewer than 2"]
        return [c.describe() for c in self.changes if c.verdict == "worse"]

    @property
    def model_updated(self) -> bool:
        return self.revision != self.baseline_revision

    @property
    def summary(self) -> str:
        n = max((c.n for c in self.changes), default=0)
        parts = [f"{verdict} on {', '.join(c.metric for c in self.changes if c.verdict == key)}"
                 for key, verdict in (("worse", "significantly worse"), ("better", "better"),
                                      ("same", "not significantly different"))
                 if any(c.verdict == key for c in self.changes)]
        revision = (f"model revision {self.baseline_revision} -> {self.revision}: "
                    if self.model_updated else "")
        note = f"; {self.inputs_note}" if self.inputs_note else ""
        needed = max((c.needed for c in self.changes), default=metrics.MIN_PAIRED_ITEMS)
        moved = max((c.items_changed for c in self.changes), default=0)
        if 0 < n < needed:
            judged = f", too few for any change to be significant (fewer than {needed})"
        elif self.changes and moved == 0:
            judged = ", none of whose scores changed"
        elif self.changes and moved < needed:
            judged = (f", {moved} of them changed, too few for any change to be significant "
                      f"(fewer than {needed})")
        else:  # what "better" and "worse" were judged with
            judged = f", {percent(self.changes[0].confidence)} CIs" if self.changes else ""
        return (f"{self.cell}: {revision}{'; '.join(parts) or 'nothing to compare'} ({n} paired "
                f"items{judged}){note}")

    @property
    def inputs_note(self) -> str:
        """What the run was given unlike the baseline besides the model revision, so that a
        change a user made on purpose reads as one; "" when nothing else differs."""
        if not self.other_inputs:
            return ""
        shown = ", ".join(self.other_inputs[:4])
        more = f" and {len(self.other_inputs) - 4} more" if len(self.other_inputs) > 4 else ""
        return f"unlike the baseline's inputs: {shown}{more}"


def gate(record: CellRecord, votes: Mapping[str, np.ndarray], path: Path, tolerance: float = 0.0,
         n_resamples: int = 1000, seed: int = 0, alpha: float = GATE_ALPHA) -> GateVerdict:
    """The cell against the baseline at ``path`` (scores recomputed from the votes, so a
    baseline written before scores were kept still gates), its intervals taken as the record's
    own CIs were (``record.metrics.interval``)."""
    baseline = read_baseline(path, record.cell)
    old = item_scores(baseline.probs_for(record.labels), votes)
    new = item_scores({i.id: i.probs for i in record.items}, votes)
    held = {i.id for i in record.items}.intersection(old)
    revision = (record.meta.get("model") or {}).get("revision")
    other = (input_changes(baseline.inputs, inputs_of(record), leave_out=("revision",))
             if baseline.inputs else [])  # the revision: the verdict names it
    return GateVerdict(record.cell, revision, baseline.revision if baseline.has_revision else revision,
                       tuple(paired_changes(old, new, tolerance, n_resamples=n_resamples, seed=seed,
                                            alpha=alpha, interval=record.metrics.interval)),
                       (len(held), len(held.intersection(new))), tuple(other))


def regressions(record: CellRecord, votes: Mapping[str, np.ndarray], path: Path,
                tolerance: float = 0.0, n_resamples: int = 1000, seed: int = 0,
                alpha: float = GATE_ALPHA) -> list[str]:
    """Messages for every gated metric that got significantly worse (empty: no regression)."""
    return gate(record, votes, path, tolerance, n_resamples, seed, alpha).failures
