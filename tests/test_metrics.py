import warnings

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import pearsonr
from sklearn.metrics import balanced_accuracy_score, f1_score

from harness import metrics as M


@pytest.fixture
def pq():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(6, 0.5), size=500)
    q = rng.dirichlet(np.full(6, 0.5), size=500)
    p[:50, :3] = 0.0  # exact zeros exercise 0·log 0
    return p / p.sum(axis=1, keepdims=True), q


def test_js_matches_scipy(pq):
    p, q = pq
    np.testing.assert_allclose(M.js_distance(p, q), jensenshannon(p, q, axis=1), atol=1e-12)
    np.testing.assert_allclose(M.js_divergence(p, q), jensenshannon(p, q, axis=1, base=2) ** 2,
                               atol=1e-12)
    assert M.js_distance(p[0], q[0]) == pytest.approx(jensenshannon(p[0], q[0]))
    # unnormalised input is normalised first, as in scipy
    assert M.js_distance([2, 2, 0], [0, 1, 3]) == pytest.approx(jensenshannon([2, 2, 0], [0, 1, 3]))


@pytest.mark.parametrize("metric", [M.js_distance, M.js_divergence, M.bhattacharyya, M.r2])
def test_one_pair_gives_a_python_float_and_rows_give_an_array(metric, pq):
    p, q = pq
    assert type(metric(p[0], q[0])) is float  # printed as a number, not np.float64(...)
    assert metric(p, q).shape == (len(p),)


def test_bc_r2_entropy_match_references(pq):
    p, q = pq
    np.testing.assert_allclose(M.bhattacharyya(p, q), np.sqrt(p * q).sum(axis=1))
    expected_r2 = [pearsonr(a, b).statistic ** 2 for a, b in zip(p, q)]
    np.testing.assert_allclose(M.r2(p, q), expected_r2, atol=1e-12)
    from scipy.stats import entropy as scipy_entropy
    np.testing.assert_allclose(M.entropy(p), scipy_entropy(p, base=2, axis=1), atol=1e-12)


def test_a_nearly_flat_distribution_keeps_its_correlation():
    """Only a flat row (spread under 1e-12) has r² 0 by convention: a near-uniform one, as a
    hedging model gives, is correlated like any other."""
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.full(6, 300.0), size=50), rng.dirichlet(np.full(6, 300.0), size=50)
    assert np.ptp(p, axis=1).max() < 0.1 and np.ptp(q, axis=1).max() < 0.1
    expected = [pearsonr(a, b).statistic ** 2 for a, b in zip(p, q)]
    np.testing.assert_allclose(M.r2(p, q), expected, atol=1e-12)
    np.testing.assert_allclose(M.r2(q, p), expected, atol=1e-12)


def test_an_items_accuracy_is_its_top_class_against_the_majority_ties_to_the_first_label():
    votes = [[2, 2, 0], [0, 1, 3], [1, 0, 0], [0, 2, 2]]
    pred = [[0.1, 0.8, 0.1], [0.0, 0.0, 1.0], [0.5, 0.3, 0.2], [0.0, 0.6, 0.4]]
    assert M.accuracy_per_item(votes, pred).tolist() == [0.0, 1.0, 1.0, 1.0]
    scores = M.item_scores(votes, pred)
    assert scores["acc"].tolist() == [0.0, 1.0, 1.0, 1.0] and set(scores) == {"js", "jsd", "bc",
                                                                              "r2", "acc"}


def test_edge_cases():
    one_hot_a, one_hot_b = np.eye(4)[0], np.eye(4)[1]
    assert M.js_distance(one_hot_a, one_hot_a) == 0.0
    assert M.js_distance(one_hot_a, one_hot_b) == pytest.approx(np.sqrt(np.log(2)))
    assert M.js_divergence(one_hot_a, one_hot_b) == pytest.approx(1.0)
    assert M.bhattacharyya(one_hot_a, one_hot_b) == 0.0
    assert M.bhattacharyya(one_hot_a, one_hot_a) == pytest.approx(1.0)
    uniform = np.full(4, 0.25)
    assert M.r2(uniform, one_hot_a) == 0.0  # constant input
    assert M.r2(one_hot_a, one_hot_a) == pytest.approx(1.0)
    assert M.entropy(uniform) == pytest.approx(2.0) and M.entropy(one_hot_a) == 0.0
    assert isinstance(M.js_distance(uniform, one_hot_a), float)
    with pytest.raises(ValueError, match="shape"):
        M.js_distance(np.ones(3), np.ones(4))
    for metric in (M.js_distance, M.bhattacharyya, M.r2):  # never broadcast one row over many
        with pytest.raises(ValueError, match=r"one shape.*\(2, 4\) and \(4,\)"):
            metric(np.ones((2, 4)), uniform)
        with pytest.raises(ValueError, match="one shape"):
            metric(np.ones((1, 2, 4)), np.ones((1, 2, 4)))


def test_macro_f1_and_accuracy_match_sklearn():
    rng = np.random.default_rng(1)
    votes = rng.integers(0, 6, size=(400, 5)).astype(float)
    pred = rng.dirichlet(np.ones(5), size=400)
    out = M.classification(votes, pred)
    majority = M.majority_index(votes)
    keep = majority >= 0
    t, p = majority[keep], pred[keep].argmax(axis=1)
    assert out["n_tied"] == int((~keep).sum()) > 0 and out["n_scored"] == int(keep.sum())
    assert out["acc_untied"] == pytest.approx((t == p).mean())
    assert out["f1_untied"] == pytest.approx(
        f1_score(t, p, labels=list(range(5)), average="macro", zero_division=0))
    first = votes.argmax(axis=1)  # ties to the first label, every item
    assert out["acc"] == pytest.approx((first == pred.argmax(axis=1)).mean())
    assert out["f1"] == pytest.approx(f1_score(first, pred.argmax(axis=1), labels=list(range(5)),
                                               average="macro", zero_division=0))
    assert out["uar"] == pytest.approx(balanced_accuracy_score(first, pred.argmax(axis=1)))
    assert out["uar_untied"] == pytest.approx(balanced_accuracy_score(t, p))


def test_the_tie_convention_on_the_public_crema_d_votes():
    """Ties to the first label: Disgust is 9.19% of the majorities and an all-Neutral guess
    scores 0.539 (the paper's figures); leaving ties out gives 8.05% and 0.573."""
    from harness.data import load_dataset
    from harness.data.crema_d import release_labels

    votes = load_dataset("crema_d", votes_file=release_labels() / "processedResults" /
                         "tabulatedVotes.csv").votes
    assert len(votes) == 7442
    assert (M.majority_or_first(votes) == 1).mean() == pytest.approx(0.0919, abs=5e-5)
    untied = M.majority_index(votes)
    assert (untied[untied >= 0] == 1).mean() == pytest.approx(0.0805, abs=5e-5)
    out = M.classification(votes, np.tile(np.eye(6)[4], (len(votes), 1)))
    assert out["acc"] == pytest.approx(0.5390, abs=5e-5)
    assert out["uar"] == pytest.approx(1 / 6)  # Neutral's recall 1, every other class's 0
    assert out["acc_untied"] == pytest.approx(0.5733, abs=5e-5)
    assert out["n_tied"] == 644


def test_macro_f1_with_classes_never_seen():
    t = np.array([0, 0, 1])
    p = np.array([0, 1, 1])
    expected = f1_score(t, p, labels=list(range(4)), average="macro", zero_division=0)
    assert M.f1_from_indices(t, p, 4) == pytest.approx(expected)
    batch = M.f1_from_indices(np.stack([t, t]), np.stack([p, t]), 4)
    assert batch[0] == pytest.approx(expected) and batch[1] == pytest.approx(0.5)


def test_majority_ties():
    np.testing.assert_array_equal(M.majority_index([[1, 2, 2], [3, 1, 0], [1.5, 1.5, 0]]),
                                  [-1, 0, -1])


def test_entropy_bins_width_and_quantile():
    h = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 2.0])
    index, edges = M.entropy_bins(h, 5)
    np.testing.assert_allclose(edges, [0, 0.4, 0.8, 1.2, 1.6, 2.0])
    np.testing.assert_array_equal(index, [0, 0, 1, 2, 2, 4])
    medians, counts = M.binned_medians([1, 2, 3, 4, 5, 6], index, 5)
    np.testing.assert_array_equal(counts, [2, 1, 2, 0, 1])
    np.testing.assert_allclose(medians, [1.5, 3, 4.5, np.nan, 6])
    on_edges, _ = M.entropy_bins(np.arange(6.0), 5)  # edges 0..5: an inner edge goes up
    np.testing.assert_array_equal(on_edges, [0, 1, 2, 3, 4, 4])
    q_index, q_edges = M.entropy_bins(np.arange(100.0), 4, method="quantile")
    np.testing.assert_array_equal(np.bincount(q_index), [25, 25, 25, 25])
    with pytest.raises(ValueError):
        M.entropy_bins(h, method="kmeans")


def test_a_median_s_interval_is_the_widest_pair_of_order_statistics_that_covers_95_percent():
    """Conover's table: n=10 -> the 2nd and 9th values (97.9%), n=100 -> the 40th and 61st; each
    n's pair covers at least 95% and the next pair in would not; under 6 values, none does."""
    from scipy.stats import binom

    assert M.median_interval(np.arange(10.0)[::-1]) == (1.0, 8.0)
    assert M.median_interval(np.arange(100.0)) == (39.0, 60.0)
    assert all(np.isnan(M.median_interval(np.arange(float(n)))).all() for n in range(6))
    for n in range(6, 80):
        low, _ = M.median_interval(np.arange(float(n)))
        j = int(low) + 1
        assert 1 - 2 * binom.cdf(j - 1, n, 0.5) >= 0.95 > 1 - 2 * binom.cdf(j, n, 0.5)
    intervals = M.binned_median_intervals([5, 1, 2, 3, 4, 6, 9, 7], [1, 1, 1, 1, 1, 1, 0, 2], 4)
    assert intervals[1] == (1.0, 6.0) and all(np.isnan(intervals[b]).all() for b in (0, 2, 3))


def test_bootstrap_ci_covers_the_mean_and_is_reproducible():
    rng = np.random.default_rng(2)
    x = rng.normal(0.4, 0.1, size=2000)
    low, high = M.bootstrap_ci(x, seed=3)
    assert low < x.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(2000), rel=0.2)
    assert M.bootstrap_ci(x, seed=3) == (low, high)
    assert np.isnan(M.bootstrap_ci(np.array([0.7]))).all()  # one item: no interval, not [0.7, 0.7]


def test_one_item_has_no_interval_in_any_estimate():
    """A cell of one item (``--limit 1``): its mean is shown, its CI is NaN ("–" in the tables)
    wherever it is computed, never a zero-width interval claiming certainty."""
    from harness.resampling import confusion_cis, mean_cis

    assert np.isnan(mean_cis(np.array([[0.3, 0.5]]))).all()
    assert np.isnan(list(confusion_cis(np.array([1]), np.array([1]), 4).values())).all()
    summary = M.summarize(np.array([[3.0, 1.0, 0.0]]), np.array([[0.6, 0.3, 0.1]]))
    assert summary["js"]["mean"] == pytest.approx(M.js_distance([0.75, 0.25, 0.0], [0.6, 0.3, 0.1]))
    assert all(np.isnan(summary[m]["ci95"]).all() for m in ("js", "bc", "r2", "acc", "uar"))


@pytest.mark.parametrize("successes, n", [(0, 2), (1, 2), (7, 10), (24, 26), (26, 26), (3, 500)])
def test_the_accuracy_interval_is_wilsons_score_interval(successes, n):
    """Wilson (1927) in its closed form, not scipy again: centre (x + z²/2)/(n + z²), half-width
    z/(n + z²)·√(x(n − x)/n + z²/4)."""
    z = 1.959963984540054
    centre = (successes + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * np.sqrt(successes * (n - successes) / n + z * z / 4)
    assert M.proportion_ci(successes, n) == pytest.approx((centre - half, centre + half), abs=1e-12)
    correct = np.r_[np.ones(successes), np.zeros(n - successes)]
    assert M.accuracy_ci(correct) == M.proportion_ci(successes, n)


@pytest.mark.parametrize("confidence", [0.95, 0.5, 0.99, 0.999])
def test_the_accuracy_interval_is_scipys_wilson_interval_to_the_last_bit(confidence):
    """The harness computes Wilson's interval itself (scipy.stats took 0.6 s of each worker's
    start to import); every end equals scipy's, the exact 0 and 1 at k = 0 and k = n included."""
    from scipy.stats import binomtest

    for n in [*range(2, 41), 97, 500, 4373, 24770]:
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            found = binomtest(k, n).proportion_ci(confidence, method="wilson")
            assert M.proportion_ci(k, n, confidence) == (float(found.low), float(found.high)), (k, n)


@pytest.mark.parametrize("successes, n, confidence", [
    (11, 10, 0.95), (11, 10, 0.99), (-1, 10, 0.99), (3.5, 10, 0.95), (3, 10, 1.5), (3, 10, -0.1)])
def test_the_accuracy_interval_refuses_what_scipy_refused(successes, n, confidence):
    with pytest.raises(ValueError):
        M.proportion_ci(successes, n, confidence)


def test_a_cell_whose_items_are_all_right_gets_an_accuracy_interval_below_one():
    """The percentile bootstrap of 26 right answers is [1, 1], as if 26 items could prove a
    model never wrong; Wilson's interval reaches down to 0.871. One item still has none."""
    votes = np.eye(4)[np.arange(26) % 4] * 3 + 1
    summary = M.summarize(votes, votes)
    assert summary["acc"]["mean"] == 1.0
    assert summary["acc"]["ci95"] == pytest.approx([0.8713, 1.0], abs=1e-4)
    assert summary["acc_untied"]["ci95"] == summary["acc"]["ci95"]
    assert M.summarize(votes, votes, interval="percentile")["acc"]["ci95"] == [1.0, 1.0]
    assert np.isnan(M.accuracy_ci([1.0])).all() and np.isnan(M.accuracy_ci([], "expanded")).all()
    with pytest.raises(ValueError, match="expanded, percentile"):
        M.accuracy_ci([1.0, 0.0], "bca")


def _exact_coverage(n: int, accuracy: float, interval: str) -> float:
    """How often a cell's accuracy CI holds ``accuracy`` over n items: the binomial sum over
    every count of right answers (the bootstrap's interval depends on the count alone)."""
    from scipy.stats import binom

    held = 0.0
    for right in range(n + 1):
        low, high = M.accuracy_ci(np.r_[np.ones(right), np.zeros(n - right)], interval)
        held += binom.pmf(right, n, accuracy) * (low <= accuracy <= high)
    return held


@pytest.mark.parametrize("n", [10, 26])
def test_the_accuracy_interval_holds_its_level_near_one(n):
    """Over 10 and 26 items, at true accuracies of 0.8 to 0.98, the cell's 95% CI of accuracy
    held it at least 90% of the time (exactly, not by simulation); the plain percentile
    bootstrap's, at 0.95 over 10 items, 40%."""
    held = [_exact_coverage(n, accuracy, "expanded") for accuracy in (0.8, 0.9, 0.95, 0.98)]
    assert min(held) > 0.90 and np.mean(held) > 0.93
    if n == 10:
        assert _exact_coverage(n, 0.95, "percentile") < 0.45


def test_summarize_excludes_invalid_rows():
    votes = np.array([[3, 0, 0], [0, 2, 1], [1, 1, 1], [0, 0, 4]], dtype=float)
    pred = votes / votes.sum(axis=1, keepdims=True)
    pred[3] = np.nan
    out = M.summarize(votes, pred, n_resamples=200)
    assert out["n_items"] == 4 and out["n_valid"] == 3 and out["valid"] == 0.75
    assert out["js"]["mean"] == pytest.approx(0.0) and out["bc"]["mean"] == pytest.approx(1.0)
    assert out["acc_untied"]["mean"] == 1.0 and out["n_tied"] == 1
    assert out["acc"]["mean"] == 1.0  # the tied row counts, as class 0 on both sides
    assert M.summarize(votes, np.full_like(pred, np.nan))["n_valid"] == 0


def test_every_summarized_metric_has_its_direction_and_only_the_divergences_are_lower_is_better():
    votes = np.array([[3, 0, 0], [0, 2, 1], [1, 1, 1]], dtype=float)
    out = M.summarize(votes, votes / votes.sum(axis=1, keepdims=True), n_resamples=50)
    scored = {name for name, value in out.items() if isinstance(value, dict)}
    assert scored == set(M.LOWER_IS_BETTER)
    assert {name for name, lower in M.LOWER_IS_BETTER.items() if lower} == {"js", "jsd"}


def test_the_summary_intervals_are_scipys_percentile_bootstrap_and_accuracys_wilsons():
    """Every CI of a cell's summary, computed from resample counts, is what scipy's paired
    percentile bootstrap gives with the same seed (to rounding for means, exactly for counts),
    but accuracy's, which is Wilson's under the expanded intervals (the default) and the
    bootstrap's under the plain ones."""
    from harness.metrics import (
        bootstrap_ci,
        f1_from_indices,
        majority_index,
        per_item,
        proportion_ci,
        summarize,
    )

    rng = np.random.default_rng(4)
    votes = rng.integers(0, 4, size=(300, 4)).astype(float) + np.eye(4)[rng.integers(0, 4, 300)]
    pred = rng.dirichlet(np.ones(4), size=300)
    pred[7] = np.nan  # an invalid item is left out of every interval
    summary = summarize(votes, pred, n_resamples=400, seed=3)
    plain = summarize(votes, pred, n_resamples=400, seed=3, interval="percentile")
    keep = np.isfinite(pred).all(axis=1)
    v, p = votes[keep], pred[keep]
    for name, values in per_item(v, p).items():
        assert summary[name]["ci95"] == pytest.approx(
            list(bootstrap_ci(values, n_resamples=400, seed=3)), rel=1e-12)
    untied = majority_index(v) >= 0
    for suffix, truth, rows in (("", v.argmax(axis=1), slice(None)),
                                ("_untied", majority_index(v), untied)):
        t, g = truth[rows], p.argmax(axis=1)[rows]
        acc = bootstrap_ci(t, g, statistic=lambda a, b, axis: (a == b).mean(axis=axis),
                           n_resamples=400, seed=3, interval="percentile")
        f1 = bootstrap_ci(t, g, statistic=lambda a, b, axis: f1_from_indices(a, b, 4),
                          n_resamples=400, seed=3)
        assert summary[f"acc{suffix}"]["ci95"] == list(proportion_ci(int((t == g).sum()), t.size))
        assert plain[f"acc{suffix}"]["ci95"] == list(acc)
        assert summary[f"f1{suffix}"]["ci95"] == pytest.approx(list(f1), rel=1e-12)


def test_resampled_means_over_several_batches_are_scipys():
    """Beyond 2,000 items the draws come in batches; every batch is drawn as scipy draws it."""
    from harness.metrics import bootstrap_ci
    from harness.resampling import mean_cis

    values = np.random.default_rng(5).uniform(size=(5_000, 2))
    got = mean_cis(values, n_resamples=900, seed=2)
    for column, ci in zip(values.T, got):
        assert ci == pytest.approx(bootstrap_ci(column, n_resamples=900, seed=2), rel=1e-12)


def test_confusion_intervals_over_several_batches_are_scipys():
    """Accuracy, macro-F1 and UAR counted per resample by group (no one-hot product) over
    batched draws: scipy's paired percentile bootstrap with the same seed (to rounding: a count
    over n against scipy's mean of booleans)."""
    from harness.metrics import bootstrap_ci, f1_from_indices
    from harness.resampling import confusion_cis

    rng = np.random.default_rng(6)
    truth, guess = rng.integers(0, 5, 4_500), rng.integers(0, 5, 4_500)
    guess[::3] = truth[::3]  # better than chance, so that the two differ in shape
    truth[truth == 4], truth[:2] = 3, 4  # a class of two items: some resamples lack it
    cis = confusion_cis(truth, guess, 5, n_resamples=700, seed=4)
    acc, f1, uar = cis["acc"], cis["f1"], cis["uar"]

    def balanced(a, b, axis):  # each resample's mean recall over the classes its truth holds
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true": as meant
            warnings.simplefilter("ignore")
            return np.array([balanced_accuracy_score(x, y)
                             for x, y in zip(np.atleast_2d(a), np.atleast_2d(b))])

    assert uar == pytest.approx(bootstrap_ci(truth, guess, n_resamples=700, seed=4,
                                             statistic=balanced), rel=1e-12)
    assert acc == pytest.approx(bootstrap_ci(truth, guess, n_resamples=700, seed=4, statistic=lambda
                                             a, b, axis: (a == b).mean(axis=axis)), rel=1e-12)
    assert f1 == pytest.approx(bootstrap_ci(truth, guess, n_resamples=700, seed=4, statistic=lambda
                                            a, b, axis: f1_from_indices(a, b, 5)), rel=1e-12)


def test_kept_resample_counts_come_as_one_block_equal_to_the_fresh_draws():
    """The report's pairs keep the counts matrix: it comes whole (one product, not a product
    per small block), the same counts a cell's summary draws block by block."""
    from harness.resampling import counts_blocks, resampled_means

    fresh = list(counts_blocks(3_000, 200, 7))
    kept = list(counts_blocks(3_000, 200, 7, keep=True))
    assert len(fresh) > 1 and len(kept) == 1
    assert np.array_equal(np.vstack(fresh), kept[0])
    assert [len(b) for b in counts_blocks(3_000, 200, 7, rows=64, keep=True)] == [64, 64, 64, 8]
    values = np.random.default_rng(8).uniform(size=(3_000, 3))
    assert resampled_means(values, 200, 7, keep=True) == pytest.approx(
        resampled_means(values, 200, 7), rel=1e-12)


def test_misshapen_or_empty_inputs_are_refused_naming_what_was_given():
    """Votes over 3 classes against predictions over 4 (2-D both: a shape check alone on the
    dimensions let it through), and entropies that are none or not finite."""
    with pytest.raises(ValueError, match=r"got \(4, 3\) and \(4, 4\)"):
        M.classification(np.ones((4, 3)), np.ones((4, 4)))
    for entropies in ([], [0.5, np.nan], [np.inf]):
        with pytest.raises(ValueError, match="one or more finite entropies"):
            M.entropy_bins(np.array(entropies, dtype=float))


def test_a_class_of_one_item_found_has_recall_one_and_f1_one():
    """(rows: the truth) one item of class 0, found; three of class 1, two found; class 2 never
    true nor predicted (F1 0, out of UAR)."""
    from harness.confusion import confusion_scores

    scores = confusion_scores([[1, 0, 0], [1, 2, 0], [0, 0, 0]])
    assert scores["acc"] == 0.75
    assert scores["uar"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert scores["f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
