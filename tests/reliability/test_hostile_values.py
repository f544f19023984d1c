"""Values at the edges: mixtures of huge or infinite numbers, predictions that are NaN or of the
wrong shape, empty bins, and model names that are markup."""

import warnings

import numpy as np
import pytest

from harness.aggregate import candidate_weights, dirichlet_mixture
from harness.metrics import binned_medians, classification, entropy_bins
from harness.record import CellMetrics, CellRecord, Estimate
from harness.report.tables import latex, main_table, markdown

VOTES = np.array([[3.0, 1, 0], [0, 4, 1], [1, 1, 3]])


def test_mixtures_of_extreme_values_are_defined_or_refused(record_property):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow, NaN) fails the test
        np.testing.assert_allclose(dirichlet_mixture([[1e308, 1e308], [0.5, 0.5]], [0.0, 0.0]),
                                   [0.5, 0.5])
        np.testing.assert_allclose(candidate_weights([1e308, 1e308], "linear"), [0.5, 0.5])
        np.testing.assert_allclose(dirichlet_mixture([[0.2, 0.8]], [-1e4], tau=1e-300), [0.2, 0.8])
    for bad in (float("inf"), float("nan"), 0.0, -1.0):
        with pytest.raises(ValueError, match="tau must be positive and finite"):
            dirichlet_mixture([[0.2, 0.8]], [0.0], tau=bad)
    with pytest.raises(ValueError, match="scores must be finite"):
        candidate_weights([1.0, float("inf")], "linear")
    with pytest.raises(ValueError, match="finite non-negative scores"):
        candidate_weights([1.0, -2.0], "linear")
    record_property("reliability", "hostile values: mixtures of 1e308 and inf, NaN and misshapen "
                                   "predictions, empty bins, markup in names: 0 NaN results, "
                                   "0 unclear errors")


def test_a_nan_prediction_is_left_out_of_accuracy_not_read_as_class_0():
    pred = np.array([[0.9, 0.1, 0.0], [np.nan] * 3, [0.0, 0.0, 1.0]])
    scores = classification(VOTES, pred)
    assert scores["acc"] == 1.0 and scores["n_scored"] == 2  # the NaN row used to count as class 0


@pytest.mark.parametrize("pred", [np.ones((3, 4)), np.ones((2, 3)), np.ones(3)])
def test_mismatched_shapes_are_named(pred):
    with pytest.raises(ValueError, match=r"must both be \(N, K\) of one shape"):
        classification(VOTES, pred)


def test_empty_and_zero_bins_are_refused_clearly():
    with pytest.raises(ValueError, match="one or more finite entropies, got 0 values"):
        entropy_bins([])
    with pytest.raises(ValueError, match="n_bins must be at least 1, got 0"):
        entropy_bins([0.1, 0.5], n_bins=0)
    with pytest.raises(ValueError, match="one bin per value"):
        binned_medians([0.1, 0.2], [0], 2)


def test_model_names_are_escaped_in_latex_and_markdown():
    name = r"\input{/etc/hostname}|x_y%$#&~^"
    record = CellRecord(f"{name}-iemocap-base", name, "iemocap", "base", ("a", "b"),
                        CellMetrics(1, 1, 1.0, {"js": Estimate(0.3, (0.3, 0.3))}), 0.0, 0.0, (), {})
    header, rows = main_table([record])
    tex = latex(header, rows)
    assert r"\input" not in tex and r"\textbackslash{}input\{/etc/hostname\}" in tex
    assert r"x\_y\%\$\#\&\textasciitilde{}\textasciicircum{}" in tex
    md = markdown(header, rows)
    assert md.splitlines()[2].count(" | ") == len(header) - 1  # the | in the name is escaped
