"""Distribution and classification metrics, entropy binning and bootstrap CIs.

Every distribution metric takes (K,) or (N, K) arrays (rows are normalised to sum to 1, as
scipy's ``jensenshannon`` does) and returns a float or an (N,) array.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import bdtr, ndtri, rel_entr

from harness.confusion import CLASSIFICATION, confusion_scores
from harness.resampling import SCORE_NOISE

LOWER_IS_BETTER = {"js": True, "jsd": True, "bc": False, "r2": False, "acc": False, "f1": False,
                   "uar": False, "acc_untied": False, "f1_untied": False, "uar_untied": False}
# Fewer paired items than this and no change is called significant, whatever its bootstrap CI:
# the exact sign-flip test's smallest one-sided p-value with n items is 2^-n, above the 2.5% of
# a 95% interval's tail up to 5 items, while the percentile bootstrap's interval over 2 items is
# the two differences themselves, excluding zero whenever both moved the same way.
MIN_PAIRED_ITEMS = 6
_LN2 = math.log(2.0)  # a Python float: one pair's divergence stays a float, as the distance is


def changed_items(before, after) -> int:
    """How many paired items' scores moved by more than :data:`SCORE_NOISE`: what a paired
    comparison's evidence rests on. Items whose score stayed put add nothing but zeros to the
    mean change, so a bootstrap over 200 items of which 5 changed is one over those 5 (all 5
    worse excluded zero at 98% though the exact sign-flip test gives them 2^-5 = 3%); the gate
    and the strategies table count these for their least number of items."""
    diff = np.abs(np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64))
    return int((diff > SCORE_NOISE).sum())


def _pair(p, q) -> tuple[np.ndarray, np.ndarray, bool]:
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim not in (1, 2):
        raise ValueError(f"p and q must have one shape, (K,) or (N, K); got {p.shape} and {q.shape}")
    single = p.ndim == 1
    p, q = np.atleast_2d(p), np.atleast_2d(q)
    return p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True), single


def _out(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def js_distance(p, q):
    """Jensen–Shannon distance, natural log: sqrt(½KL(p‖m) + ½KL(q‖m)), m = (p+q)/2.

    Equals ``scipy.spatial.distance.jensenshannon(p, q)``; 0 for identical inputs, sqrt(ln 2)
    for disjoint ones. The table column "JS".
    """
    p, q, single = _pair(p, q)
    m = 0.5 * (p + q)
    js = 0.5 * (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1))
    return _out(np.sqrt(np.maximum(js, 0.0)), single)


def js_divergence(p, q):
    """Jensen–Shannon divergence in bits, in [0, 1]: ``jensenshannon(p, q, base=2) ** 2``."""
    d = js_distance(p, q)
    return d * d / _LN2


def bhattacharyya(p, q):
    """Bhattacharyya coefficient Σ_k sqrt(p_k q_k): 1 for identical inputs, higher is better."""
    p, q, single = _pair(p, q)
    return _out(np.sqrt(p * q).sum(axis=1), single)


def r2(p, q):
    """Squared Pearson correlation between p and q across the K classes; 0 if either is constant."""
    p, q, single = _pair(p, q)
    pc = p - p.mean(axis=1, keepdims=True)
    qc = q - q.mean(axis=1, keepdims=True)
    sp, sq = (pc * pc).sum(axis=1), (qc * qc).sum(axis=1)
    constant = (np.ptp(p, axis=1) < 1e-12) | (np.ptp(q, axis=1) < 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * qc).sum(axis=1) / np.sqrt(sp * sq)
    return _out(np.where(constant, 0.0, np.clip(r * r, 0.0, 1.0)), single)


def entropy(p, base: float = 2.0):
    """Shannon entropy of each distribution (default in bits), with 0·log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    single = p.ndim == 1
    p = np.atleast_2d(p)
    p = p / p.sum(axis=1, keepdims=True)
    h = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1) / np.log(base)
    return _out(h + 0.0, single)


def per_item(true, pred) -> dict[str, np.ndarray]:
    """Every distribution metric per item: ``{"js", "jsd", "bc", "r2"}`` -> (N,) arrays."""
    js = js_distance(np.atleast_2d(true), np.atleast_2d(pred))
    return {
        "js": js,
        "jsd": js * js / _LN2,
        "bc": bhattacharyya(np.atleast_2d(true), np.atleast_2d(pred)),
        "r2": r2(np.atleast_2d(true), np.atleast_2d(pred)),
    }


def majority_index(votes) -> np.ndarray:
    """Index of each row's top-voted class, or −1 where the top count is tied."""
    v = np.atleast_2d(np.asarray(votes, dtype=np.float64))
    top = v.max(axis=1, keepdims=True)
    tied = np.isclose(v, top).sum(axis=1) > 1
    return np.where(tied, -1, v.argmax(axis=1))


def _confusion(true_idx: np.ndarray, pred_idx: np.ndarray, k: int) -> np.ndarray:
    """(..., K, K) confusion counts over the last axis of index arrays of the same shape."""
    lead = true_idx.shape[:-1]
    rows = np.arange(int(np.prod(lead, dtype=np.int64))).reshape(lead + (1,)) * k * k
    flat = (rows + true_idx * k + pred_idx).reshape(-1)
    return np.bincount(flat, minlength=rows.size * k * k).reshape(lead + (k, k))


def f1_from_indices(true_idx, pred_idx, k: int):
    """Macro-F1 over all K classes (zero_division=0), vectorised over leading axes."""
    return confusion_scores(_confusion(np.asarray(true_idx), np.asarray(pred_idx), k))["f1"]


def majority_or_first(votes) -> np.ndarray:
    """Index of each row's top-voted class; among tied classes the first in the corpus's label
    order (``argmax``), so that every item is counted."""
    return np.atleast_2d(np.asarray(votes, dtype=np.float64)).argmax(axis=1)


def accuracy_per_item(votes, pred) -> np.ndarray:
    """(N,) 1.0 where the prediction's top class is the annotators' (ties to the first label)."""
    guess = np.atleast_2d(np.asarray(pred, dtype=np.float64)).argmax(axis=1)
    return (guess == majority_or_first(votes)).astype(np.float64)


def item_scores(votes, pred) -> dict[str, np.ndarray]:
    """What is paired item by item (the report's strategy table, the gate, ``compare``):
    :func:`per_item` and :func:`accuracy_per_item`."""
    return {**per_item(votes, pred), "acc": accuracy_per_item(votes, pred)}


def classification(true_votes, pred) -> dict[str, float]:
    """Accuracy, macro-F1 and UAR of argmax(pred) against the annotators' majority, two ways.

    ``acc``/``f1``/``uar``: the majority is the top-voted class, ties going to the first label in
    the corpus's order, every item counted (what the paper's figures point to: on the public
    CREMA-D votes it gives Disgust 9.19% of the majorities and an all-Neutral accuracy of 0.539).
    ``acc_untied``/``f1_untied``/``uar_untied``: items whose top count is tied are left out
    (``n_tied`` of them; ``n_scored`` are left). A prediction row that is not finite (an
    invalid item) is left out of both, never read as class 0.

    Raises:
        ValueError: ``true_votes`` and ``pred`` are not (N, K) arrays of one shape.
    """
    true_votes = np.atleast_2d(np.asarray(true_votes, dtype=np.float64))
    pred = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    if true_votes.shape != pred.shape or true_votes.ndim != 2:
        raise ValueError(f"votes and predictions must both be (N, K) of one shape; got "
                         f"{true_votes.shape} and {pred.shape}")
    valid = np.isfinite(pred).all(axis=1)
    k = true_votes.shape[1]
    guess = np.where(valid, np.nan_to_num(pred).argmax(axis=1), -1)
    majority = majority_index(true_votes)
    out = {}
    for suffix, truth, keep in (("", majority_or_first(true_votes), valid),
                                ("_untied", majority, valid & (majority >= 0))):
        t, p = truth[keep], guess[keep]
        scores = confusion_scores(_confusion(t, p, k)) if t.size else {}
        for name in CLASSIFICATION:
            out[f"{name}{suffix}"] = float(scores.get(name, math.nan))
    out["n_scored"] = int((valid & (majority >= 0)).sum())
    out["n_tied"] = int((majority < 0).sum())
    return out


def level_name(index: int) -> str:
    """How the harness shows the ambiguity level :func:`entropy_bins` numbers ``index`` (0 the
    least ambiguous): ``level 1`` to ``level 5``, in the tables, the figures and the checks (the
    report page's script says the same; records keep ``index``)."""
    return f"level {index + 1}"


def entropy_bins(entropies, n_bins: int = 5, method: str = "width") -> tuple[np.ndarray, np.ndarray]:
    """Assign each item to an ambiguity bin.

    Args:
        entropies: (N,) item entropies.
        n_bins: Number of bins.
        method: ``"width"`` (equal-width over the observed range, the default) or ``"quantile"``.

    Returns:
        (bin index per item in [0, n_bins), the n_bins + 1 edges).
    """
    h = np.asarray(entropies, dtype=np.float64).reshape(-1)
    if h.size == 0 or not np.isfinite(h).all():
        raise ValueError(f"entropy_bins needs one or more finite entropies, got {h.size} values")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if method == "width":
        edges = np.linspace(h.min(), h.max(), n_bins + 1)
    elif method == "quantile":
        edges = np.quantile(h, np.linspace(0, 1, n_bins + 1))
    else:
        raise ValueError(f"method must be 'width' or 'quantile', not {method!r}")
    index = np.searchsorted(edges[1:-1], h, side="right")
    return index, edges


def binned_medians(values, bin_index, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of ``values`` per bin (NaN for an empty bin) and the item count per bin."""
    values = np.asarray(values, dtype=np.float64)
    bin_index = np.asarray(bin_index)
    if n_bins < 1 or values.shape != bin_index.shape:
        raise ValueError(f"need n_bins >= 1 and one bin per value; got n_bins={n_bins}, "
                         f"{values.shape} values and {bin_index.shape} bins")
    medians = np.full(n_bins, np.nan)
    counts = np.bincount(bin_index, minlength=n_bins)[:n_bins]
    for b in np.flatnonzero(counts):
        medians[b] = np.median(values[bin_index == b])
    return medians, counts


def median_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median of ``values``: the order statistics x_(j) and
    x_(n+1-j) with the largest j whose coverage, 1 − 2·P(B ≤ j−1) for B ~ Binomial(n, ½), is
    at least ``confidence`` (no resampling, and exact whatever the values' distribution).
    (NaN, NaN) when n is too small for any such pair: fewer than 6 values at 95%."""
    x = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    j = _median_rank(x.size, confidence)
    if j < 1:
        return math.nan, math.nan
    return float(x[j - 1]), float(x[x.size - j])


@functools.lru_cache(maxsize=4096)  # a corpus's levels hold the same counts cell after cell
def _median_rank(n: int, confidence: float) -> int:
    """The j of :func:`median_interval` for n values (0: none reaches ``confidence``)."""
    if n == 0:
        return 0
    below = bdtr(np.arange(n), n, 0.5)  # P(B <= j - 1) for j = 1..n (scipy.stats: a 1 s import)
    return int(np.searchsorted(below, (1 - confidence) / 2 * (1 + 1e-12), side="right"))


def binned_median_intervals(values, bin_index, n_bins: int, confidence: float = 0.95
                            ) -> list[tuple[float, float]]:
    """:func:`median_interval` of ``values`` in each bin ((NaN, NaN) for an empty or small one)."""
    values, bin_index = np.asarray(values, dtype=np.float64), np.asarray(bin_index)
    return [median_interval(values[bin_index == b], confidence) for b in range(n_bins)]


def bootstrap_ci(*samples, statistic=np.mean, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0, interval: str = "expanded") -> tuple[float, float]:
    """Percentile-bootstrap CI of ``statistic`` over items (paired when several samples), taken
    at :func:`harness.resampling.interval_level` (``expanded``: as wide as Student's t interval
    would be over so few items; ``percentile``: the plain interval) from at least
    ``n_resamples`` resamples (:func:`harness.resampling.resamples_for`).

    ``statistic(*resampled, axis=-1)`` must be vectorised along ``axis``, as scipy requires.
    Uses :func:`scipy.stats.bootstrap`, batched so that one batch draws about
    :data:`BATCH_INDEXES` item indexes (all resamples at once up to 2,000 items): memory stays
    flat from there on, whatever the number of items.
    """
    from scipy.stats import bootstrap

    from harness.resampling import BATCH_INDEXES, interval_level, resamples_for

    n = len(samples[0])
    if n < 2:  # one item's resamples are all that item: an interval of width 0 would claim a
        return math.nan, math.nan  # certainty that one item cannot give (NaN: shown as "–")
    level = interval_level(confidence, n, interval)
    n_resamples = resamples_for(level, n_resamples, confidence)
    result = bootstrap(samples, statistic, n_resamples=n_resamples, confidence_level=level,
                       method="percentile", paired=len(samples) > 1, vectorized=True,
                       batch=max(1, BATCH_INDEXES // n), rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def proportion_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion (``successes`` of ``n``), NaN at both ends under
    2 items (as :func:`bootstrap_ci`). A cell's accuracy takes it under the ``expanded``
    intervals: the percentile bootstrap of a mean of 0s and 1s collapses where they are nearly
    all one or the other (all 26 right: [1, 1]; over 10 items at a true accuracy of 0.95 its 95%
    CI held it 40% of the time, Wilson's 91%: ``python -m bench.intervals``).

    Newcombe's (1998) form, step for step as scipy's
    ``binomtest(...).proportion_ci(confidence, method="wilson")`` computes it (the tests hold
    them equal to the last bit), without importing :mod:`scipy.stats`: 0.6 s of every worker's
    start, for one formula."""
    if n < 2:
        return math.nan, math.nan
    k, n = int(successes), int(n)
    if k != successes or not 0 <= k <= n:  # as scipy refuses them
        raise ValueError(f"successes ({successes}) must be a whole number from 0 to n ({n})")
    if not 0 <= confidence <= 1:
        raise ValueError(f"confidence ({confidence}) must be in the interval [0, 1]")
    z = float(ndtri(0.5 + 0.5 * confidence))
    p = k / n
    denom = 2 * (n + z**2)
    centre = (2 * n * p + z**2) / denom
    delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
    return (0.0 if k == 0 else centre - delta), (1.0 if k == n else centre + delta)


def accuracy_ci(correct, interval: str = "expanded", n_resamples: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> tuple[float, float]:
    """A cell's CI of its accuracy (``correct``: each item right or not): Wilson's
    (:func:`proportion_ci`) under the ``expanded`` intervals, the plain percentile bootstrap's
    under ``percentile`` (the draws :func:`bootstrap_ci` and the confusion matrices' take)."""
    from harness.resampling import checked_interval, mean_cis

    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    if checked_interval(interval) == "percentile":
        return mean_cis(correct[:, None], n_resamples, seed, confidence, "percentile")[0]
    return proportion_ci(int(correct.sum()), correct.size, confidence)


def summarize(true_votes, pred, n_resamples: int = 1000, seed: int = 0,
              interval: str = "expanded") -> dict:
    """All metrics for one cell: means with bootstrap 95% CIs, validity and classification.

    The CIs are :func:`bootstrap_ci`'s (scipy's percentile bootstrap, the same draws, at the
    level ``interval`` gives), computed from resample counts (:mod:`harness.resampling`), but
    for accuracy's under the ``expanded`` intervals (the default): Wilson's
    (:func:`proportion_ci`); ``interval`` and ``n_resamples`` are kept in the summary.

    Args:
        true_votes: (N, K) annotator votes (or distributions).
        pred: (N, K) predictions; a row of NaN marks an invalid prediction, which is excluded
            from every metric and counted, never filled in.
    """
    true_votes = np.atleast_2d(np.asarray(true_votes, dtype=np.float64))
    pred = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    valid = np.isfinite(pred).all(axis=1)
    out: dict = {"n_items": int(valid.size), "n_valid": int(valid.sum()),
                 "valid": float(valid.mean()) if valid.size else float("nan"), "interval": interval,
                 "n_resamples": n_resamples}
    if not valid.any():
        return out
    from harness.resampling import confusion_cis, mean_cis

    scores = per_item(true_votes[valid], pred[valid])
    cis = mean_cis(np.column_stack(list(scores.values())), n_resamples, seed, interval=interval)
    for (name, values), ci in zip(scores.items(), cis):
        out[name] = {"mean": float(values.mean()), "ci95": list(ci)}
    cls = classification(true_votes[valid], pred[valid])
    k = true_votes.shape[1]
    guess = pred[valid].argmax(axis=1)
    majority = majority_index(true_votes[valid])
    for suffix, truth, keep in (("", majority_or_first(true_votes[valid]), slice(None)),
                                ("_untied", majority, majority >= 0)):
        intervals = confusion_cis(truth[keep], guess[keep], k, n_resamples, seed,
                                  interval=interval)
        if interval == "expanded":  # the plain rule's is the confusion bootstrap's, as drawn
            intervals["acc"] = accuracy_ci(truth[keep] == guess[keep], interval)
        for name in CLASSIFICATION:
            out[f"{name}{suffix}"] = {"mean": cls[f"{name}{suffix}"], "ci95": list(intervals[name])}
    out["n_scored"], out["n_tied"] = cls["n_scored"], cls["n_tied"]
    return out
