import math

import pytest

from harness.report import format_with_change, relative_change


def test_relative_change_sign_convention():
    assert relative_change(0.4, 0.3, lower_is_better=True) == pytest.approx(25.0)
    assert relative_change(0.4, 0.5, lower_is_better=True) == pytest.approx(-25.0)
    assert relative_change(0.5, 0.6, lower_is_better=False) == pytest.approx(20.0)
    assert math.isnan(relative_change(0.0, 0.1, lower_is_better=False))
    for base, value in ((0.4, math.inf), (math.inf, 0.4), (0.4, math.nan), (-math.inf, 0.4)):
        assert math.isnan(relative_change(base, value, lower_is_better=True)), (base, value)


def test_format_with_change():
    assert format_with_change(0.3591, 0.3364, lower_is_better=True) == "0.3364 (+6.3)"
    assert format_with_change(0.70, 0.65, lower_is_better=False) == "0.6500 (-7.1)"
    assert format_with_change(0.0, 0.65, lower_is_better=False) == "0.6500"


def test_a_change_that_rounds_to_nothing_is_never_minus_zero():
    from harness.report.relative import signed_percent

    assert [signed_percent(x) for x in (-0.0, -0.04, 0.04, -1.55, 6.25)] == [
        "+0.0", "+0.0", "+0.0", "-1.6", "+6.2"]
    assert format_with_change(0.5, 0.50001, lower_is_better=True) == "0.5000 (+0.0)"
