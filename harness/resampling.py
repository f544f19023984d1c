"""The percentile bootstrap by resample counts: the item indexes scipy's paired bootstrap draws
(:func:`harness.metrics.bootstrap_ci`, the same seed and batches), turned into how often each
item is drawn in each resample, so that every statistic that is a sum over items (a mean) is
resampled by one matrix product instead of gathering every resample; a confusion matrix is
counted from the drawn items' cells (:func:`resampled_group_counts`).

The intervals are scipy's: the same draws, the same percentiles; a mean differs from scipy's in
the last bits only (the sum is taken in another order), a count (the confusion behind accuracy
and macro-F1) not at all. A cell's metrics and the report's paired changes go through here: a
summary of 20,000 items drew and gathered 160 million indexes through scipy.

Every interval is taken, by default, at the level that makes the percentile interval of a mean
over n items as wide as Student's t interval would be (Hesterberg's *expanded* percentile
interval: :func:`interval_level`); the plain percentile interval runs narrow on few items (a
nominal 95% CI held the mean 88-93% of the time over 10 items, 93-94% over 26, in simulation:
``python -m bench.intervals``). ``interval="percentile"`` takes the plain one, as before."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np

from harness.confusion import CLASSIFICATION, confusion_scores

BATCH_INDEXES = 2_000_000  # item indexes one batch draws (scipy's batches in bootstrap_ci too)

CACHED_BYTES = 160 * 2**20  # a counts matrix up to this size may be kept for the next pair


INTERVALS = ("expanded", "percentile")  # how a percentile-bootstrap interval's level is taken
INTERVAL_NAMES = {"expanded": "expanded percentile bootstrap (as wide as Student's t over few items), "
                              "a change checked by the sign-flip test over the items that changed",
                  "percentile": "plain percentile bootstrap"}
TAIL_RESAMPLES = 20  # resamples at least beyond each end of an interval (its percentile's support)
MAX_RESAMPLES = 100_000  # an expanded level's least cap (resamples_for): over 2 items, their range


def interval_level(confidence: float, n: int, interval: str = "expanded") -> float:
    """The level at which the percentile bootstrap's interval of a mean over ``n`` items is
    taken so that it holds about ``confidence``: ``expanded`` (Hesterberg 2015, "What teachers
    should know about the bootstrap") takes the normal quantile z with z = √(n/(n−1))·t(n−1),
    t Student's quantile at ``confidence`` (99.5% for 95% over 6 items, 96.4% over 26, 95.4% over
    100: the same interval from about 1,000 items on); ``percentile``: ``confidence`` itself."""
    if checked_interval(interval) == "percentile" or n < 2:
        return confidence
    return _expanded_level(confidence, n)


def checked_interval(interval: str) -> str:
    """``interval`` itself, or a ``ValueError`` naming the choices."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    return interval


@functools.lru_cache(maxsize=256)
def _expanded_level(confidence: float, n: int) -> float:
    from scipy.special import stdtrit

    z = math.sqrt(n / (n - 1)) * float(stdtrit(n - 1, (1 + confidence) / 2))
    return 1 - math.erfc(z / math.sqrt(2))  # 1 - 2·P(Z > z)


def resamples_for(level: float, at_least: int, nominal: float | None = None) -> int:
    """At least ``at_least`` resamples, more where :data:`TAIL_RESAMPLES` must lie beyond each
    end of an interval at ``level`` (2,000 at 98%); for an expanded interval's level
    (``nominal``: the confidence asked), at most :data:`MAX_RESAMPLES` or ten times what
    ``nominal`` itself needs, whichever is more (the level over 2 items is 1: no number of
    resamples puts 20 beyond its ends, and its interval is the items' range anyway)."""
    cap = 10 * _tail_resamples(level if nominal is None else nominal)
    cap = MAX_RESAMPLES if math.isinf(cap) else max(MAX_RESAMPLES, cap)
    return int(max(at_least, min(_tail_resamples(level), cap)))


def _tail_resamples(level: float) -> float:
    tail = (1 - level) / 2  # 20 / tail, where 1 - level's rounding makes 200,000.0000002 of it
    return math.ceil(TAIL_RESAMPLES / tail * (1 - 1e-9)) if tail > 0 else math.inf


BLOCK_CELLS = 2**17  # resamples x items of one block: about 1 MiB as float64, whatever n is


def counts_blocks(n: int, n_resamples: int, seed: int, rows: int | None = None,
                  keep: bool = False) -> Iterator[np.ndarray]:
    """(≤ rows, n) blocks of how often each of ``n`` items is drawn in each resample, in order;
    by default as many rows as keep a block near :data:`BLOCK_CELLS` (at most 64), so that the
    memory a cell's summary takes does not grow with its items. ``keep``: keep the whole matrix
    for the next call with the same ``n`` where it is small enough (the report's pairs; a cell's
    summary draws anew and holds one block at a time); a kept matrix, in memory already, comes
    as one block unless ``rows`` is given (one product where blocks of 13 rows took 77 for
    10,000 items: the report's 378 pairs of 10,000 items took 3.0 s instead of 1.4)."""
    if keep and n_resamples * n * 8 <= CACHED_BYTES:
        whole = _kept_counts(n, n_resamples, seed)
        step = rows or n_resamples
        for start in range(0, n_resamples, step):
            yield whole[start:start + step]
        return
    yield from _draw_counts(n, n_resamples, seed, rows or _block_rows(n))


@functools.lru_cache(maxsize=1)  # a corpus's pairs mostly share their number of items
def _kept_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    whole = np.empty((n_resamples, n))
    start = 0
    for block in _draw_counts(n, n_resamples, seed, 64):
        whole[start:start + len(block)] = block
        start += len(block)
    whole.flags.writeable = False
    return whole


def _block_rows(n: int) -> int:
    """Resamples per block: as many as keep a block near :data:`BLOCK_CELLS`, at most 64."""
    return max(1, min(64, BLOCK_CELLS // max(n, 1)))


def _draw_counts(n: int, n_resamples: int, seed: int, rows: int) -> Iterator[np.ndarray]:
    for part in _draw_indexes(n, n_resamples, seed, rows):
        yield _row_counts(part, n)


def _draw_indexes(n: int, n_resamples: int, seed: int, rows: int) -> Iterator[np.ndarray]:
    """(≤ rows, n) blocks of the item indexes each resample draws, in order, as scipy draws them."""
    rng = np.random.default_rng(seed)
    batch = max(1, BATCH_INDEXES // n)  # as harness.metrics.bootstrap_ci asks scipy to batch
    for start in range(0, n_resamples, batch):
        # int32 draws the very values scipy's int64 draw gives (a test holds them equal) in half
        # the memory
        index = rng.integers(0, n, (min(batch, n_resamples - start), n), dtype=np.int32)
        for first in range(0, len(index), rows):
            yield index[first:first + rows]


def _row_counts(values: np.ndarray, width: int) -> np.ndarray:
    """(rows, width): how often each of 0..width-1 occurs in each row of ``values``."""
    offsets = (np.arange(len(values), dtype=np.int64) * width)[:, None]
    flat = np.bincount((values + offsets).ravel(), minlength=len(values) * width)
    return flat.reshape(len(values), width).astype(np.float64)


def resampled_group_counts(groups: np.ndarray, n_groups: int, n_resamples: int, seed: int
                           ) -> np.ndarray:
    """(R, n_groups): how many of each resample's drawn items fall in each group (``groups``:
    each item's group, 0..n_groups-1), as :func:`resampled_sums` of the groups' one-hot rows
    gives it, without the (n, n_groups) one-hot matrix or its product (for a confusion matrix's
    64 cells over 20,000 items that product took ten times as long as the draws)."""
    groups = np.asarray(groups, dtype=np.int64)
    n = len(groups)
    out = np.empty((n_resamples, n_groups))
    start = 0
    for part in _draw_indexes(n, n_resamples, seed, _block_rows(n)):
        out[start:start + len(part)] = _row_counts(groups[part], n_groups)
        start += len(part)
    return out


def resampled_sums(values: np.ndarray, n_resamples: int, seed: int, keep: bool = False
                   ) -> np.ndarray:
    """(R, m) column sums of ``values`` (n, m) under each resample of its rows (``keep``: as
    :func:`counts_blocks`)."""
    out = np.empty((n_resamples, values.shape[1]))
    start = 0
    for block in counts_blocks(values.shape[0], n_resamples, seed, keep=keep):
        out[start:start + len(block)] = block @ values
        start += len(block)
    return out


def resampled_means(values: np.ndarray, n_resamples: int, seed: int, keep: bool = False
                    ) -> np.ndarray:
    """(R, m) column means of ``values`` (n, m) under each resample of its rows."""
    return resampled_sums(values, n_resamples, seed, keep) / values.shape[0]


def percentile_ci(stats: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of resampled statistics (along the first axis). A statistic
    may be infinite in some resamples (a relative change over a base mean of 0): an end that
    falls among them is infinite (unbounded that way), or NaN where it falls between two of
    them (a NaN end never makes a change significant); numpy's warning about it is silenced."""
    tail = (1 - confidence) / 2 * 100
    with np.errstate(invalid="ignore"):  # inf - inf where numpy interpolates between them
        low, high = np.percentile(stats, [tail, 100 - tail], axis=0)
    return float(low), float(high)


SHARED_BYTES = 16 * 2**20  # a cell's counts matrix up to this size is kept for its next CIs


def mean_cis(values: np.ndarray, n_resamples: int = 1000, seed: int = 0,
             confidence: float = 0.95, interval: str = "expanded") -> list[tuple[float, float]]:
    """Each column's mean's percentile-bootstrap CI (``values``: (n, m)) at
    :func:`interval_level`, from at least ``n_resamples`` resamples (:func:`resamples_for`); with
    fewer than two rows, NaN at both ends (as :func:`harness.metrics.bootstrap_ci`). A counts
    matrix of up to
    :data:`SHARED_BYTES` is kept, so that the next CIs over as many items with the same seed (a
    cell's metrics, then W-BoN's changes under each alpha) draw nothing again: about 20 ms of a
    1,000-item cell; a larger one is drawn block by block, its memory flat."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if len(values) < 2:
        return [(math.nan, math.nan)] * values.shape[1]
    level = interval_level(confidence, len(values), interval)
    n_resamples = resamples_for(level, n_resamples, confidence)
    small = n_resamples * len(values) * 8 <= SHARED_BYTES
    means = resampled_means(values, n_resamples, seed, keep=small)
    return [percentile_ci(means[:, j], level) for j in range(values.shape[1])]


def confusion_cis(true_idx: np.ndarray, pred_idx: np.ndarray, k: int, n_resamples: int = 1000,
                  seed: int = 0, confidence: float = 0.95, interval: str = "expanded"
                  ) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap CIs of accuracy, macro-F1 (over all K classes, zero division 0) and
    UAR from each resample's confusion matrix, by name (:func:`harness.metrics.confusion_scores`),
    at :func:`interval_level` (accuracy is a mean; macro-F1 and UAR take the same level)."""
    n = len(true_idx)
    cells = np.asarray(true_idx, dtype=np.int64) * k + np.asarray(pred_idx, dtype=np.int64)
    if n < 2:  # no interval, as harness.metrics.bootstrap_ci gives none
        return {name: (math.nan, math.nan) for name in CLASSIFICATION}
    level = interval_level(confidence, n, interval)
    n_resamples = resamples_for(level, n_resamples, confidence)
    confusion = resampled_group_counts(cells, k * k, n_resamples, seed).reshape(n_resamples, k, k)
    return {name: percentile_ci(values, level)
            for name, values in confusion_scores(confusion).items()}


# Below this, an item's change of score is numerical noise, not a change: the embedded default's
# float32 outputs recomputed on another CPU moved probabilities by up to 5e-7 and per-item scores
# by less (the report prints metrics to four decimals).
SCORE_NOISE = 1e-6
EXACT_FLIPS = 12  # up to this many changed items, every sign pattern; beyond, random ones


def sign_flip_p(diffs: np.ndarray, n_flips: int = 2000, seed: int = 0
                ) -> list[tuple[float, float]]:
    """Each column's paired sign-flip (randomization) test of its mean change (``diffs``: (n, m),
    new − old per item): the one-sided p-values (up, down) that flipping each item's sign at
    random gives a mean at least as far up (down) as the one observed. Exact under a null in
    which each item's change is as likely either way, however few items changed: an item whose
    change is 0 flips nothing, and over k items that changed the smallest p is 2^-k (every
    pattern counted up to :data:`EXACT_FLIPS` changed items; beyond, ``n_flips`` random
    patterns, p = (1 + as far) / (1 + n_flips)). The bootstrap's interval is narrow where few
    items changed (4 of 200, all one way: e^-4 = 1.8% of its resamples miss them all, though by
    chance 4 of 4 go one way 12.5% of the time); callers ask both."""
    diffs = np.asarray(diffs, dtype=np.float64).reshape(len(diffs), -1)
    out = []
    for j in range(diffs.shape[1]):
        column = diffs[:, j]
        moved = column[np.abs(column) > SCORE_NOISE]
        out.append(_flip_p(moved, n_flips, seed) if len(moved) else (1.0, 1.0))
    return out


def _flip_p(moved: np.ndarray, n_flips: int, seed: int) -> tuple[float, float]:
    observed = moved.sum()
    slack = 1e-9 * np.abs(moved).sum()  # sums of the same terms in another order
    if len(moved) <= EXACT_FLIPS:
        patterns = (np.arange(2 ** len(moved))[:, None] >> np.arange(len(moved))) & 1
        sums = (1 - 2 * patterns) @ moved
        return float((sums >= observed - slack).mean()), float((sums <= observed + slack).mean())
    rng = np.random.default_rng(seed)
    up = down = 0
    for start in range(0, n_flips, 64):  # a pattern's signs from the bits of random bytes:
        rows = min(64, n_flips - start)  # a seventh of the time of drawing each sign
        kept = np.unpackbits(rng.integers(0, 256, (rows, (len(moved) + 7) // 8), dtype=np.uint8),
                             axis=1, count=len(moved))
        sums = 2 * (kept.astype(np.float64) @ moved) - observed  # kept +, the rest flipped
        up += int((sums >= observed - slack).sum())
        down += int((sums <= observed + slack).sum())
    return (1 + up) / (1 + n_flips), (1 + down) / (1 + n_flips)
