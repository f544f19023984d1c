import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.aggregate import candidate_weights, dirichlet_mixture


@st.composite
def candidates(draw, min_b=1, max_b=6):
    b = draw(st.integers(min_b, max_b))
    k = draw(st.integers(2, 8))
    raw = draw(arrays(np.float64, (b, k), elements=st.floats(0.0, 1.0)).filter(
        lambda a: (a.sum(axis=1) > 1e-6).all()))
    scores = draw(arrays(np.float64, (b,), elements=st.floats(-1e4, 0.0)))
    return raw / raw.sum(axis=1, keepdims=True), scores


@given(candidates(), st.floats(1e-3, 1e3))
def test_result_lies_on_the_simplex(cands, tau):
    dists, scores = cands
    p = dirichlet_mixture(dists, scores, tau=tau)
    assert p.shape == (dists.shape[1],)
    assert np.all(p >= 0) and p.sum() == pytest.approx(1.0)


@given(candidates(), st.randoms(use_true_random=False))
def test_permutation_invariant(cands, random):
    dists, scores = cands
    order = list(range(len(scores)))
    random.shuffle(order)
    np.testing.assert_allclose(dirichlet_mixture(dists[order], scores[order]),
                               dirichlet_mixture(dists, scores), atol=1e-12)


@given(candidates(min_b=2), st.integers(0, 5))
def test_a_dominant_log_likelihood_picks_its_candidate(cands, pick):
    dists, scores = cands
    pick %= len(scores)
    scores = np.full(len(scores), -1e4)
    scores[pick] = -300.0  # e^(-300 - -1e4) dominates; naive exp() would underflow both to 0
    np.testing.assert_allclose(dirichlet_mixture(dists, scores), dists[pick], atol=1e-12)


@given(candidates(), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_independent_of_tau(cands, tau_a, tau_b):
    dists, scores = cands
    np.testing.assert_allclose(dirichlet_mixture(dists, scores, tau=tau_a),
                               dirichlet_mixture(dists, scores, tau=tau_b), atol=1e-12)


@given(candidates(max_b=1), st.integers(1, 6), st.sampled_from(["softmax", "linear"]))
def test_identity_on_identical_candidates(cands, copies, weighting):
    dists, _ = cands
    stacked = np.repeat(dists, copies, axis=0)
    scores = np.linspace(0.1, 0.9, copies)
    np.testing.assert_allclose(dirichlet_mixture(stacked, scores, weighting=weighting), dists[0],
                               atol=1e-12)


def test_softmax_weights_are_stable_for_very_negative_log_likelihoods():
    w = candidate_weights([-1e4, -1e4 - np.log(3.0)])
    np.testing.assert_allclose(w, [0.75, 0.25])
    assert not np.isnan(candidate_weights([-300.0, -1e4, -np.inf])).any()
    np.testing.assert_allclose(candidate_weights([-300.0, -1e4, -np.inf]), [1, 0, 0])


def test_known_mixture_and_linear_weighting():
    dists = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(dirichlet_mixture(dists, [0.0, np.log(3.0)]), [0.25, 0.75])
    np.testing.assert_allclose(dirichlet_mixture(dists, [0.2, 0.6], weighting="linear"),
                               [0.25, 0.75])
    np.testing.assert_allclose(dirichlet_mixture(dists, [0.0, 0.0], weighting="linear"),
                               [0.5, 0.5])


def test_linear_weights_are_the_scores_shares_even_where_their_sum_overflows():
    np.testing.assert_allclose(candidate_weights([1e308, 1e308, 0.0], "linear"), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(candidate_weights([1.5e308, 0.5e308], "linear"), [0.75, 0.25])
    np.testing.assert_allclose(candidate_weights([0.2, 0.6], "linear"), [0.25, 0.75])
    np.testing.assert_array_equal(candidate_weights([0.0, 0.0], "linear"), [0.5, 0.5])  # no signal
    with pytest.raises(ValueError, match="^no candidates to weight$"):
        candidate_weights([], "linear")


def test_linear_mixture_of_fewer_candidates_than_classes():
    dists = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    np.testing.assert_allclose(dirichlet_mixture(dists, [1.0, 3.0], weighting="linear"),
                               [0.25, 0.0, 0.0, 0.75])


@pytest.mark.parametrize(
    ("dists", "scores", "kwargs", "match"),
    [
        ([[0.5, 0.5]], [np.nan], {}, "finite"),
        ([[0.5, 0.5]], [-np.inf], {}, "-inf"),
        ([[0.5, 0.5], [0.2, 0.8]], [np.inf, 0.0], {}, r"finite or -inf, got \[inf, 0.0\]"),
        ([[0.5, 0.5], [0.2, 0.8]], [np.inf, 0.0], {"weighting": "linear"}, "finite or -inf"),
        ([[0.5, 0.5]], [-1.0], {"weighting": "linear"}, "non-negative"),
        ([[0.5, 0.5]], [0.0], {"weighting": "max"}, "unknown weighting"),
        ([[0.5, 0.5]], [0.0], {"tau": 0.0}, "tau"),
        ([[0.5, 0.5]], [0.0, 1.0], {}, "^1 candidates but 2 scores$"),
        ([[-0.5, 1.5]], [0.0], {}, "non-negative"),
        ([[0.5, np.nan]], [0.0], {}, "finite"),
        ([[0.5, 0.5], [np.inf, 1.0]], [0.0, 0.0], {}, "finite"),
        ([[0.5, 0.5], [0.0, 0.0]], [0.0, 0.0], {}, "non-zero"),
        (np.zeros((0, 3)), [], {}, "non-empty"),
    ],
)
def test_bad_input_is_a_clear_error(dists, scores, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dirichlet_mixture(dists, scores, **kwargs)


def test_mixtures_under_several_score_rows_are_each_the_single_mixture():
    from harness.aggregate import dirichlet_mixtures

    dists = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [2.0, 1.0, 1.0]])
    rows = [[-1.0, -2.0, -0.5], [0.0, 0.0, 0.0], [-300.0, -1e4, -301.0]]
    together = dirichlet_mixtures(dists, rows, tau=2.0)
    for row, mixed in zip(rows, together):
        np.testing.assert_array_equal(mixed, dirichlet_mixture(dists, row, tau=2.0))


def test_rows_of_scores_are_weighed_at_once_where_they_can_be():
    """W-BoN weighs its candidates under each α: rows of one length with a finite best go
    through one vectorised softmax, the same weights as one row at a time; anything else (rows
    of other lengths, a row all -inf, no rows) falls back to the row-by-row path and its errors."""
    from harness.aggregate import _softmax_rows

    rows = [[-1.0, -2.0, -np.inf], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(_softmax_rows(rows, 3), [candidate_weights(r) for r in rows],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(_softmax_rows(rows[:1], 3), [candidate_weights(rows[0])],
                               rtol=0, atol=1e-15)  # one row (one α) at once too
    for odd, width in (([[0.0, 1.0], [0.0]], 2), ([[0.0, 1.0]], 3), ([], 2), ([0.0, 1.0], 2),
                       ([[-np.inf, -np.inf]], 2), ([[np.nan, 0.0]], 2)):
        assert _softmax_rows(odd, width) is None


def test_entries_near_the_largest_float_are_mixed_without_overflow():
    huge = np.array([[1e308, 1e308, 0.0], [0.25, 0.25, 0.5]])  # the first row's sum overflows
    np.testing.assert_allclose(dirichlet_mixture(huge, [0.0, 0.0]), [0.375, 0.375, 0.25])
    many = np.full((1, 10), 2e307)  # no entry near the largest float; their sum overflows
    np.testing.assert_allclose(dirichlet_mixture(many, [0.0]), np.full(10, 0.1))


def test_the_mixture_is_its_two_halves_the_means_and_the_weights():
    from harness.aggregate import candidate_means, mixture_mean

    dists, scores = [[2.0, 1.0, 1.0], [0.1, 0.1, 0.8]], [-1.0, -2.5]
    means = candidate_means(dists, tau=3.0)
    np.testing.assert_array_equal(means.sum(axis=1), [1.0, 1.0])
    np.testing.assert_array_equal(mixture_mean(means, candidate_weights(scores)),
                                  dirichlet_mixture(dists, scores, tau=3.0))


@given(candidates(), st.lists(st.lists(st.one_of(st.floats(-1e4, 0.0), st.just(-np.inf)),
                                       min_size=6, max_size=6), min_size=1, max_size=4))
def test_mixtures_under_score_rows_are_bit_for_bit_the_strategys_mixture(cands, raw_rows):
    """What a W-BoN cell compares across α (rows at once) is what the strategy computed for its
    own α (weights, then the mean), to the last bit; a row the strategy would refuse is refused."""
    from harness.aggregate import candidate_means, dirichlet_mixtures, mixture_mean

    dists, _ = cands
    rows = [row[: len(dists)] for row in raw_rows]
    try:
        one_by_one = [mixture_mean(candidate_means(dists), candidate_weights(r)) for r in rows]
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            dirichlet_mixtures(dists, rows)
        return
    np.testing.assert_array_equal(dirichlet_mixtures(dists, rows), np.array(one_by_one))
