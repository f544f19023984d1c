"""Relative change against the ``base`` strategy, as the test-time-scaling tables print it."""

from __future__ import annotations

import math


def relative_change(baseline: float, value: float, lower_is_better: bool) -> float:
    """Percent change from ``baseline`` to ``value``, positive when ``value`` is better.

    ``100 * (base - value) / base`` for lower-is-better metrics (JS, JSD),
    ``100 * (value - base) / base`` otherwise. NaN when the baseline is 0 or not finite.
    """
    if not (math.isfinite(baseline) and math.isfinite(value)) or baseline == 0:
        return float("nan")
    delta = (baseline - value) if lower_is_better else (value - baseline)
    return 100.0 * delta / baseline


def format_with_change(baseline: float, value: float, lower_is_better: bool,
                       digits: int = 4) -> str:
    """``0.3364 (+6.3)``: the value and its relative change, one decimal."""
    change = relative_change(baseline, value, lower_is_better)
    if math.isnan(change):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({signed_percent(change)})"


def signed_percent(change: float) -> str:
    """``+6.3``, ``-1.6``, and ``+0.0`` for a change that rounds to nothing (never ``-0.0``)."""
    return f"{round(change, 1) + 0.0:+.1f}"
