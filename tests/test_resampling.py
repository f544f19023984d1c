import math

import numpy as np
import pytest
from scipy import stats

from harness.metrics import bootstrap_ci
from harness.resampling import (
    MAX_RESAMPLES,
    interval_level,
    mean_cis,
    resamples_for,
)


@pytest.mark.parametrize("n", [2, 6, 26, 100, 1000])
def test_the_expanded_level_makes_the_normal_quantile_students_widened_for_n(n):
    """Hesterberg's expanded percentile interval: z at the level is √(n/(n−1)) times Student's
    t quantile with n − 1 degrees of freedom, so the level only rises above 95%."""
    level = interval_level(0.95, n)
    z = stats.norm.ppf((1 + level) / 2) if level < 1 else math.inf
    wanted = math.sqrt(n / (n - 1)) * stats.t.ppf(0.975, n - 1)
    assert z == pytest.approx(wanted, rel=1e-6) or (level == 1.0 and wanted > 8)
    assert interval_level(0.95, n, "percentile") == 0.95 < level


def test_the_expanded_level_falls_to_the_confidence_asked_as_items_grow():
    levels = [interval_level(0.98, n) for n in (7, 10, 26, 100, 1000, 100_000)]
    assert levels == sorted(levels, reverse=True)
    assert levels[-1] == pytest.approx(0.98, abs=1e-5) and levels[0] > 0.999
    assert interval_level(0.95, 1) == 0.95  # one item has no interval whatever the level
    with pytest.raises(ValueError, match="interval must be one of expanded, percentile"):
        interval_level(0.95, 10, "bca")


def test_resamples_put_twenty_beyond_each_end_and_an_expanded_level_adds_at_most_the_cap():
    assert resamples_for(0.95, 1000) == 1000  # 25 beyond each end already
    assert resamples_for(0.98, 1000) == 2000
    assert resamples_for(interval_level(0.95, 6), 1000, 0.95) == 8225
    assert resamples_for(interval_level(0.95, 2), 1000, 0.95) == MAX_RESAMPLES  # the level is 1
    assert resamples_for(0.95, 5000) == 5000
    assert resamples_for(1.0, 1000) == MAX_RESAMPLES  # a level of 1 asked outright
    # a strict gate (alpha 0.0005 over 5 metrics: 99.98% each) keeps its 20 beyond each end,
    # the expanded level's share of them included, where the nominal level needs more than the cap
    strict = interval_level(0.9998, 40)
    assert resamples_for(0.9998, 1000) == 200_000
    assert resamples_for(strict, 1000, 0.9998) == math.ceil(20 / ((1 - strict) / 2) * (1 - 1e-9))
    assert resamples_for(strict, 1000, 0.9998) > 1_200_000  # Student's tail is long out there
    assert resamples_for(interval_level(0.9998, 3), 1000, 0.9998) == 2_000_000  # ten times 200,000


def test_an_expanded_interval_over_two_items_is_their_range():
    """Two items cannot say more than that the mean lies between them: the percentile interval
    there was narrower than the two values (and excluded zero whenever both were on one side)."""
    low, high = mean_cis(np.array([[0.2], [0.6]]))[0]
    assert (low, high) == pytest.approx((0.2, 0.6))
    plain = mean_cis(np.array([[0.2], [0.6]]), interval="percentile")[0]
    assert plain[0] > 0.2 - 1e-12 and plain[1] < 0.6 + 1e-12


@pytest.mark.parametrize("interval", ["expanded", "percentile"])
def test_the_resampled_interval_is_scipys_at_the_same_level_and_resamples(interval):
    values = np.random.default_rng(4).gamma(2.0, size=(12, 2))
    for column, ci in zip(values.T, mean_cis(values, 1000, seed=5, interval=interval)):
        assert ci == pytest.approx(bootstrap_ci(column, n_resamples=1000, seed=5,
                                                interval=interval), rel=1e-12)


def test_the_expanded_interval_holds_the_mean_about_as_often_as_it_says_on_few_items():
    """Means of 10 draws of a skewed score: the plain percentile 95% interval held the true mean
    markedly less often than 95%, the expanded one close to it (``python -m bench.intervals``
    prints the figures with more draws)."""
    rng = np.random.default_rng(11)
    samples = rng.beta(2.0, 5.0, size=(300, 10))  # true mean 2/7
    held = {}
    for interval in ("expanded", "percentile"):
        cis = [mean_cis(s[:, None], 1000, seed=k, interval=interval)[0]
               for k, s in enumerate(samples)]
        held[interval] = np.mean([low <= 2 / 7 <= high for low, high in cis])
    assert held["percentile"] < 0.93 and held["expanded"] >= 0.93
    assert held["expanded"] - held["percentile"] >= 0.025


def test_the_classification_intervals_over_two_items_are_their_range_and_over_one_none():
    from harness.resampling import confusion_cis

    two = confusion_cis(np.array([0, 1]), np.array([0, 2]), 3)  # one right, one wrong
    assert two["acc"] == pytest.approx((0.0, 1.0))
    assert all(math.isnan(end) for end in confusion_cis(np.array([0]), np.array([0]), 3)["acc"])


def test_the_sign_flip_test_is_scipys_permutation_test_and_counts_only_items_that_changed():
    """Exact up to 12 changed items (scipy's permutation_test over every sign pattern gives the
    same p), random patterns beyond (the same within their own error); items whose change is 0
    flip nothing: 5 changes of 200, all up, give 2^-5 however many zeros lie beside them."""
    from scipy.stats import permutation_test

    from harness.resampling import sign_flip_p

    def scipys(d, alternative, n_resamples):
        return permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), vectorized=True,
                                permutation_type="samples", n_resamples=n_resamples,
                                alternative=alternative, rng=1).pvalue

    changes = np.random.default_rng(3).normal(0.2, 1.0, 9)
    assert sign_flip_p(changes) == [(scipys(changes, "greater", np.inf),
                                     scipys(changes, "less", np.inf))]
    many = np.random.default_rng(4).normal(0.1, 1.0, 300)
    (up, down), = sign_flip_p(many, 20_000, 2)
    assert up == pytest.approx(scipys(many, "greater", 20_000), abs=0.01)
    assert down == pytest.approx(scipys(many, "less", 20_000), abs=0.01)
    sparse = np.zeros((200, 2))
    sparse[:5, 0], sparse[:7, 1] = 0.1, -0.3
    assert sign_flip_p(sparse) == [(2 ** -5, 1.0), (1.0, 2 ** -7)]
    assert sign_flip_p(np.full(10, 1e-7)) == [(1.0, 1.0)]  # noise: nothing changed


def test_random_sign_patterns_are_drawn_as_many_as_asked_and_ties_count_both_ways():
    """Beyond 12 changed items the patterns are drawn. 13 changes all down: every pattern's mean
    lies at or above theirs, so p up is exactly 1 and p down (1 + 0)/(1 + 100) over 100 draws
    (not a multiple of the 64 drawn at once). 7 up and 7 down by 0.1: a pattern's sum is
    0.1·(2B − 14), B ~ Binomial(14, ½), and one equal to the observed 0 (to rounding) counts
    both ways, so p up = p down ≈ (1 + P(B = 7))/2 = 0.605."""
    from scipy.stats import binom

    from harness.resampling import sign_flip_p

    assert sign_flip_p(np.full(12, -0.1), 100) == [(1.0, 2 ** -12)]  # 12: still every pattern
    assert sign_flip_p(np.full(13, -0.1), 100) == [(1.0, 1 / 101)]
    (up, down), = sign_flip_p(np.array([0.1] * 7 + [-0.1] * 7), 20_000, 0)
    expected = (1 + binom.pmf(7, 14, 0.5)) / 2
    assert up == pytest.approx(expected, abs=0.015) and down == pytest.approx(expected, abs=0.015)


def test_a_kept_counts_matrix_cannot_be_written_by_the_caller_it_is_lent_to():
    """The matrix kept for the next pair is the one every caller with the same n is given: a
    caller writing to its block would change the next pair's resamples."""
    from harness.resampling import counts_blocks

    block = next(counts_blocks(50, 100, 0, keep=True))
    with pytest.raises(ValueError, match="read-only"):
        block[0, 0] = 5.0
