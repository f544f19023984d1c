"""The paired change of a strategy's cell against its base: its bootstrap CI (scipy's, paired
by id), the sign-flip test beside it, when a change is significant, and the pairs remembered."""

import pytest

from harness.record import CellMetrics, CellRecord, ItemRecord
from tests.report.test_tables import cell


def test_a_change_is_marked_on_the_items_whose_scores_changed_not_every_paired_item():
    """40 paired items of which 5 moved, all the same way: the bootstrap over the 40 excludes
    zero (a resample misses all 5 only e^-5 of the time), yet it is 5 items' evidence, which the
    sign-flip test puts at p = 2·2^-5 = 6%; 6 moved are marked (3%)."""
    from harness.report.paired import paired_change

    def cells(moved, interval="expanded"):
        def rows(strategy):
            return tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={
                "js": 0.5 if strategy == "bon" and k < moved else 0.4, "bc": 0.6, "r2": 0.1})
                for k in range(40))
        return [CellRecord(f"m-d-{s}", "m", "d", s, ("x", "y"),
                           CellMetrics(40, 40, 1.0, {}, interval=interval), 0.0, 0.0, rows(s), {})
                for s in ("base", "bon")]

    five = paired_change(*cells(5), "js", True)
    assert (five.n, five.changed, five.high < 0, five.significant) == (40, 5, True, False)
    assert five.p == 2 * 2 ** -5  # 5 of 5 one way: the sign-flip test's smallest p, two-sided
    assert paired_change(*cells(5, "percentile"), "js", True).significant  # the table as it was
    six = paired_change(*cells(6), "js", True)
    assert six.significant and six.p == 2 * 2 ** -6
    assert paired_change(*cells(0), "bc", False).changed == 0


@pytest.mark.parametrize("interval", ["expanded", "percentile"])
def test_the_paired_bootstrap_gives_scipys_interval_and_pairs_by_id(interval):
    """The report's resampling (index counts, one matrix product per pair) gives the interval
    scipy's paired percentile bootstrap gives with the same seed, to rounding."""
    import numpy as np
    import pytest

    from harness.metrics import bootstrap_ci
    from harness.report.paired import paired_change

    rng = np.random.default_rng(1)
    base, ours = rng.uniform(0.2, 0.6, 500), rng.uniform(0.15, 0.6, 500)
    base_bc, ours_bc = rng.uniform(0.5, 0.9, 500), rng.uniform(0.5, 0.95, 500)

    def record(strategy, values, bc, order):
        items = tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={
            "js": float(values[k]), "bc": float(bc[k]), "r2": 0.1, "jsd": 0.2}) for k in order)
        return CellRecord(f"m-d-{strategy}", "m", "d", strategy, ("x", "y"),
                          CellMetrics(500, 500, 1.0, {}, interval=interval), 0.0, 0.0, items, {})

    cells = (record("base", base, base_bc, range(500)),
             record("w-bon", ours, ours_bc, range(499, -1, -1)))
    change = paired_change(*cells, "js", True)

    def relative(b, a, axis=-1):
        return -100.0 * (a.mean(axis=axis) - b.mean(axis=axis)) / b.mean(axis=axis)

    # paired in the strategy cell's item order (reversed here): scipy given the same pairs, its
    # interval taken as the strategy cell's own were
    low, high = bootstrap_ci(base[::-1], ours[::-1], statistic=relative, n_resamples=1000, seed=0,
                             interval=interval)
    assert change.n == 500 and change.change == pytest.approx(float(relative(base, ours)))
    assert (change.low, change.high) == pytest.approx((low, high), rel=1e-9)
    if interval == "expanded":  # wider than the plain interval, if little over 500 items
        plain = bootstrap_ci(base[::-1], ours[::-1], statistic=relative, n_resamples=1000, seed=0,
                             interval="percentile")
        assert low < plain[0] and high > plain[1] and high - low < 1.01 * (plain[1] - plain[0])
    # BC, resampled with JS (the same items): its own pairs, higher being better
    bc = paired_change(*cells, "bc", False)
    low, high = bootstrap_ci(base_bc[::-1], ours_bc[::-1], statistic=lambda b, a, axis=-1:
                             -relative(b, a, axis), n_resamples=1000, seed=0, interval=interval)
    assert bc.change == pytest.approx(-float(relative(base_bc, ours_bc)))
    assert (bc.low, bc.high) == pytest.approx((low, high), rel=1e-9)


def test_a_paired_change_of_a_metric_the_tables_do_not_show_is_computed_too():
    from harness.report.paired import paired_change

    def record(strategy, jsd):
        items = tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={"js": 0.4, "bc": 0.6, "r2": 0.1,
                                                               "jsd": jsd + 0.01 * (k % 3)})
                      for k in range(12))
        return CellRecord(f"m-d-{strategy}", "m", "d", strategy, ("x", "y"),
                          CellMetrics(12, 12, 1.0, {}), 0.0, 0.0, items, {})

    base, better = record("base", 0.40), record("w-bon", 0.30)
    assert paired_change(base, better, "js", True).change == 0.0  # a shown metric, remembered
    jsd = paired_change(base, better, "jsd", True)  # not shown: computed on its own
    assert jsd.change == pytest.approx(100 * 0.1 / 0.41) and jsd.n == 12


def test_two_items_valid_in_both_cells_have_a_change_and_one_has_none():
    from harness.report.paired import paired_change

    def record(strategy, values):
        items = tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={"js": v, "bc": 0.6, "r2": 0.1})
                      for k, v in enumerate(values))
        return CellRecord(f"m-d-{strategy}", "m", "d", strategy, ("x", "y"),
                          CellMetrics(len(values), len(values), 1.0, {}), 0.0, 0.0, items, {})

    two = paired_change(record("base", [0.4, 0.6]), record("bon", [0.3, 0.5]), "js", True)
    assert two.n == 2 and two.change == pytest.approx(20.0)
    assert paired_change(record("base", [0.4]), record("bon", [0.3]), "js", True) is None


def test_a_base_mean_of_zero_in_some_resamples_leaves_the_change_unbounded_without_warnings():
    """Accuracy 0 on most of six items: some resampled base means are 0, so the relative change
    is infinite there; the interval says so (an infinite end, or NaN: never significant by
    accident) and numpy says nothing."""
    import math
    import warnings

    from harness.report.paired import paired_change

    def record(strategy, hits):
        items = tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={"js": 0.4, "bc": 0.6, "r2": 0.1,
                                                               "acc": float(k in hits)})
                      for k in range(6))
        return CellRecord(f"m-d-{strategy}", "m", "d", strategy, ("x", "y"),
                          CellMetrics(6, 6, 1.0, {}), 0.0, 0.0, items, {})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        change = paired_change(record("base", {0}), record("w-bon", {0, 1, 2, 3}), "acc", False)
    assert change.change == pytest.approx(300.0)
    assert math.isinf(change.high) or math.isnan(change.high)


def test_a_change_is_significant_when_its_ci_excludes_zero_on_enough_items_from_zero_too():
    from harness.report.paired import PairedChange, paired_change

    def change(low, high, n=10):
        return PairedChange(0.4, 0.39, 2.5, low, high, n).significant

    assert change(0.01, 5.0) and change(-5.0, -0.01)  # a small change is one: no margin
    assert not change(0.0, 5.0) and not change(-5.0, 0.0) and not change(-1.0, 1.0)
    assert not change(0.01, 5.0, n=5) and change(0.01, 5.0, n=6)

    def record(strategy, acc):
        items = tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={"js": 0.4, "bc": 0.6, "r2": 0.1,
                                                               "jsd": 0.2, "acc": acc})
                      for k in range(8))
        return CellRecord(f"m-d-{strategy}", "m", "d", strategy, ("x", "y"),
                          CellMetrics(8, 8, 1.0, {}), 0.0, 0.0, items, {})

    # a base whose mean is 0 has no percent: the change is the difference, tested all the same
    zero = paired_change(record("base", 0.0), record("w-bon", 1.0), "acc", False)
    assert (zero.relative, zero.change, zero.low, zero.high, zero.n) == (False, 1.0, 1.0, 1.0, 8)
    assert zero.significant
    assert paired_change(record("base", 0.5), record("w-bon", 1.0), "acc", False).relative


def test_the_sign_flip_p_is_taken_only_where_the_ci_excludes_zero_however_narrow():
    """Ten of 40 items 0.002 better: a change of 0.125% whose CI excludes zero by less than 1%
    gets the test's p (2·2^-10); two moved, a CI from exactly 0, and a CI across zero each get
    p = 1.0 (not significant, whatever the test says)."""
    from harness.report.paired import paired_change

    def pair(deltas):
        def rows(strategy):
            return tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={
                "js": 0.4 - (deltas[k] if strategy == "bon" and k < len(deltas) else 0.0),
                "bc": 0.6, "r2": 0.1}) for k in range(40))
        return paired_change(*[CellRecord(f"m-d-{s}", "m", "d", s, ("x", "y"),
                                          CellMetrics(40, 40, 1.0, {}), 0.0, 0.0, rows(s), {})
                               for s in ("base", "bon")], "js", True)

    ten = pair([0.002] * 10)
    assert 0 < ten.low < 1 and ten.change == pytest.approx(0.125)
    assert ten.p == 2 * 2 ** -10 and ten.significant
    two = pair([0.002] * 2)
    assert two.low == 0.0 and two.high > 0 and two.p == 1.0 and not two.significant
    worse = pair([-0.002] * 2)
    assert worse.low < 0 and worse.high == 0.0 and worse.p == 1.0
    across = pair([0.002] * 8 + [-0.002] * 4)
    assert across.low < 0 < across.high < 1 and across.p == 1.0


def test_a_change_whose_test_disagrees_with_its_ci_is_not_significant():
    from harness.report.paired import PairedChange

    def significant(p):
        return PairedChange(0.4, 0.39, 2.5, 0.5, 5.0, 40, changed=20, p=p).significant

    assert significant(0.05) and significant(None) and not significant(0.0501)


def test_the_remembered_pairs_answer_only_for_their_own_cells_and_stay_few():
    """An entry made for other objects under the same ids (ids are reused once an object is
    gone) is not taken; no more than 64 pairs are kept."""
    from harness.report import paired

    base, better = cell("m", "d", "base", 0.4, 0.6, 0.1, 0.05), cell("m", "d", "bon", 0.3, 0.6, 0.1, 0.05)
    stale = {m: None for m in paired.PAIRED_METRICS}
    for made_for in ((object(), better), (base, object())):
        paired._REMEMBERED[(id(base), id(better), 1000, 0)] = (*made_for, stale)
        assert paired.paired_change(base, better, "js", True) is not None
    for k in range(70):
        paired.paired_change(base, cell("m", "d", "bon", 0.3, 0.6, 0.1, 0.05, phase=k), "js", True)
    assert len(paired._REMEMBERED) == 64
