"""What :mod:`harness.metrics` accepts, refuses and assumes when an argument is left out: counts
for distributions, lists for arrays, the defaults the README states, the edges of each check.
(Each test here kills mutants of the module that its behavioural tests left alive.)"""

import numpy as np
import pytest

from harness import metrics as M
from harness.resampling import SCORE_NOISE


def test_entropy_normalises_counts_and_lists_and_never_gives_minus_zero():
    assert M.entropy([2, 2, 0, 0]) == pytest.approx(1.0)  # votes, not shares: 1 bit
    np.testing.assert_allclose(M.entropy([[1, 1, 1, 1], [3, 0, 0, 0]]), [2.0, 0.0])
    assert M.entropy([[1, 1], [1, 3]], base=np.e)[0] == pytest.approx(np.log(2))
    assert str(M.entropy([5, 0, 0])) == "0.0"  # not "-0.0" in a table


def test_the_per_item_divergence_is_the_jensen_shannon_divergence_in_bits():
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(4), size=20), rng.dirichlet(np.ones(4), size=20)
    scores = M.item_scores(p, q)
    np.testing.assert_allclose(scores["jsd"], M.js_divergence(p, q), rtol=1e-12)
    assert scores["jsd"].max() <= 1.0


def test_classification_and_summaries_take_plain_lists():
    votes, pred = [[3, 0, 0], [0, 2, 1], [1, 0, 2]], [[0.8, 0.1, 0.1], [0.1, 0.6, 0.3], [0, 1, 0]]
    assert M.classification(votes, pred)["acc"] == pytest.approx(2 / 3)
    summary = M.summarize(votes, pred, n_resamples=50)
    assert summary["n_valid"] == 3 and summary["acc"]["mean"] == pytest.approx(2 / 3)


def test_entropy_bins_default_to_five_and_refuse_fewer_than_one():
    index, edges = M.entropy_bins([0.0, 1.0, 2.0])
    assert len(edges) == 6 and index.tolist() == [0, 2, 4]
    assert M.entropy_bins([0.0, 1.0], 1)[0].tolist() == [0, 0]
    with pytest.raises(ValueError, match="n_bins must be at least 1, got 0"):
        M.entropy_bins([0.0, 1.0], 0)


def test_binned_medians_take_lists_and_refuse_no_bins_or_a_bin_list_of_another_length():
    medians, counts = M.binned_medians([1.0, 3.0, 2.0], [0, 0, 1], 1)
    assert medians.tolist() == [2.0] and counts.tolist() == [2]  # bin 1 is past the last: left out
    with pytest.raises(ValueError, match="n_bins=0"):
        M.binned_medians([1.0], [0], 0)
    with pytest.raises(ValueError, match=r"\(2,\) values and \(3,\) bins"):
        M.binned_medians([1.0, 2.0], [0, 0, 1], 2)


def test_a_median_interval_whose_coverage_is_exactly_the_level_is_taken():
    """Six values: the outermost pair covers 1 − 2/64 = 0.96875 exactly, a float that the
    binomial tail also gives exactly; "at least" takes it, and a hair more refuses it."""
    assert M.median_interval(np.arange(6.0), 0.96875) == (0.0, 5.0)
    assert np.isnan(M.median_interval(np.arange(6.0), 0.96876)).all()


def test_two_items_have_an_interval():
    assert M.bootstrap_ci(np.array([0.1, 0.9])) == (0.1, 0.9)
    assert M.bootstrap_ci(np.array([0.1, 0.9]), np.array([0.2, 0.4]),
                          statistic=lambda a, b, axis: (a - b).mean(axis=axis)) == (-0.1, 0.5)


def test_the_default_resamples_and_seed_are_one_thousand_and_zero():
    """What README and docs/metrics.md state for a cell's CIs: at least 1,000 resamples, seed 0."""
    rng = np.random.default_rng(6)
    x = rng.uniform(size=500)
    assert M.bootstrap_ci(x) == M.bootstrap_ci(x, n_resamples=1000, seed=0)
    correct = (np.arange(1013) % 3 != 0).astype(float)  # ends that move with either setting
    assert M.accuracy_ci(correct, "percentile") == M.accuracy_ci(correct, "percentile", 1000, 0)
    votes = rng.integers(0, 3, size=(500, 3)).astype(float) + np.eye(3)[rng.integers(0, 3, 500)]
    pred = rng.dirichlet(np.ones(3), size=500)
    assert M.summarize(votes, pred) == M.summarize(votes, pred, n_resamples=1000, seed=0)
    for changed in ({"n_resamples": 1001}, {"seed": 1}):  # so the equalities above can fail
        assert M.bootstrap_ci(x, **changed) != M.bootstrap_ci(x)
        assert M.summarize(votes, pred, **changed)["js"] != M.summarize(votes, pred)["js"]
        assert M.accuracy_ci(correct, "percentile", **changed) != M.accuracy_ci(correct,
                                                                                "percentile")


def test_a_score_that_moved_by_exactly_the_noise_floor_has_not_changed():
    assert M.changed_items([0.0, 0.0, 0.5], [SCORE_NOISE, 2 * SCORE_NOISE, 0.5]) == 1
