"""StrategyConfig's checks: a value it cannot use is refused when the config is made (at a
grid's start-up for ``--strategy-arg``), not deep in a strategy after the model has run."""

import pytest

from harness.strategies import StrategyConfig


@pytest.mark.parametrize("field", ["tau", "temperature"])
@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "1", True])
def test_tau_and_temperature_are_finite_numbers_above_zero(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite number above 0"):
        StrategyConfig(**{field: value})
