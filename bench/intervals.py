"""Whether the harness's 95% intervals hold what they say, by simulation, under each way of taking
them (``--interval``: expanded, the default, and plain percentile).

    python -m bench.intervals                     # 10, 26 and 100 items, 1,000 and 600 draws
    python -m bench.intervals --items 6 --draws 300
    python -m bench.intervals --items 200 --draws 1000 --changed 3 4 5 6 8   # sparse updates

Three figures per number of items and per way:

- **accuracy near 1**: how often a cell's 95% CI of its accuracy holds the true accuracy, at
  0.5 to 0.98, exactly (the binomial sum over each count of right answers): Wilson's interval
  under ``expanded``, the bootstrap's under ``percentile``;
- **coverage**: how often a cell's 95% CI of its mean JS, BC, R² and accuracy holds the true
  mean, over draws of that many items from a population of 200,000 (each item's annotator
  distribution and prediction drawn as ``bench.gate_null`` draws them);
- **false marks**: how often the strategies table's ``*`` (the paired 95% CI of the relative
  change against ``base`` excludes zero, on 6 paired items or more) marks a change between two
  cells that differ by chance alone (a null update of ``bench.gate_null``: both sides drawn alike
  around each item's centre), per metric.

Each share comes with its binomial standard error. The regression gate's own rate is
``python -m bench.gate_null``'s.
"""

from __future__ import annotations

import math

import numpy as np

from bench.gate_null import arguments, drawn_side, null_updates, sparse_updates
from harness import metrics
from harness.resampling import INTERVALS, mean_cis

COVERED = ("js", "bc", "r2", "acc")
MARKED = ("js", "bc", "r2")  # the strategies table's paired changes


def population(size: int, seed: int) -> dict[str, np.ndarray]:
    """Per-item scores of ``size`` items of 4 classes, each drawn as a null update's side."""
    rng = np.random.default_rng(seed)
    truth, centre = rng.dirichlet(np.ones(4), size=size), rng.dirichlet(np.ones(4), size=size)
    return drawn_side(rng, truth, centre)


def coverage(scores: dict[str, np.ndarray], items: int, draws: int, interval: str, seed: int
             ) -> dict[str, float]:
    """The share of ``draws`` samples of ``items`` whose 95% CI holds the population's mean."""
    rng = np.random.default_rng(seed)
    size = len(scores[COVERED[0]])
    held = dict.fromkeys(COVERED, 0)
    for k in range(draws):
        index = rng.integers(0, size, items)
        means = COVERED[:-1]  # accuracy's interval is its own (metrics.accuracy_ci)
        cis = mean_cis(np.column_stack([scores[m][index] for m in means]), 1000, k,
                       interval=interval) + [metrics.accuracy_ci(scores["acc"][index], interval,
                                                                 1000, k)]
        for name, (low, high) in zip(COVERED, cis):
            held[name] += low <= scores[name].mean() <= high
    return {name: count / draws for name, count in held.items()}


ACCURACIES = (0.5, 0.8, 0.9, 0.95, 0.98)


def accuracy_coverage(items: int, accuracy: float, interval: str) -> float:
    """How often a cell's 95% CI of its accuracy holds a true ``accuracy`` over ``items`` items:
    exactly, the binomial sum over each count of right answers (an interval depends on the count
    alone: Wilson's, or the bootstrap's with the seed a cell takes, 0)."""
    from scipy.stats import binom

    held = 0.0
    for right in range(items + 1):
        correct = np.r_[np.ones(right), np.zeros(items - right)]
        low, high = metrics.accuracy_ci(correct, interval)
        held += float(binom.pmf(right, items, accuracy)) * (low <= accuracy <= high)
    return held


def false_marks(items: int, draws: int, interval: str, seed: int, changed: int | None = None
                ) -> dict[str, float]:
    """The share of ``draws`` null updates of ``items`` whose change the strategies table marks
    ``*`` (:func:`harness.report.paired.paired_change`, the cells' CIs taken as ``interval``
    says), per metric (``changed``: updates of ``bench.gate_null.sparse_updates``)."""
    from harness.record import CellMetrics, CellRecord, ItemRecord
    from harness.report.paired import paired_change

    def cell(strategy: str, scores: dict[str, dict[str, float]]) -> CellRecord:
        rows = tuple(ItemRecord(i, (0.25,) * 4, scores=s) for i, s in scores.items())
        return CellRecord(f"m-d-{strategy}", "m", "d", strategy, ("a", "b", "c", "d"),
                          CellMetrics(items, items, 1.0, interval=interval), 0.0, 0.0, rows, {})

    marked = dict.fromkeys(MARKED, 0)
    updates = (null_updates(draws, items, seed) if changed is None
               else sparse_updates(draws, items, changed, seed))
    for k, (old, new) in enumerate(updates):
        base, other = cell("base", old), cell("bon", new)
        for name in MARKED:
            change = paired_change(base, other, name, metrics.LOWER_IS_BETTER[name], seed=k)
            marked[name] += change is not None and change.significant
    return {name: count / draws for name, count in marked.items()}


def _shares(shares: dict[str, float], draws: int) -> str:
    error = max(math.sqrt(s * (1 - s) / draws) for s in shares.values())
    return ", ".join(f"{name} {100 * s:.1f}%" for name, s in shares.items()) + f" (± {100 * error:.1f})"


def main(argv: list[str] | None = None) -> None:
    args, draws = arguments("python -m bench.intervals", [10, 26, 100], 7, argv)
    for changed in args.changed:
        items, count = args.items[0], draws[0]
        shares = false_marks(items, count, "expanded", args.seed + changed, changed)
        print(f"{items} items of which {changed} changed, {count} null updates, expanded: "
              f"null changes marked * {_shares(shares, count)}", flush=True)
    if args.changed:
        return
    scores = population(200_000, args.seed)
    for items in args.items:
        for interval in INTERVALS:
            held = [accuracy_coverage(items, p, interval) for p in ACCURACIES]
            print(f"{items} items, {interval}: accuracy's 95% CI held a true accuracy of "
                  f"{' / '.join(map(str, ACCURACIES))}: "
                  f"{' / '.join(f'{100 * h:.1f}' for h in held)}% (exactly)", flush=True)
    for items, count in zip(args.items, draws):
        for interval in INTERVALS:
            print(f"{items} items, {interval}: 95% CIs held the mean "
                  f"{_shares(coverage(scores, items, count, interval, args.seed + items), count)}; "
                  f"null changes marked * "
                  f"{_shares(false_marks(items, count, interval, args.seed + items), count)}",
                  flush=True)


if __name__ == "__main__":
    main()
