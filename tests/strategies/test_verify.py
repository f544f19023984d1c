"""``harness.strategies._verify``: the verifier's calls for an item's candidates."""

import pytest

from harness.data import load_dataset
from harness.strategies._config import StrategyConfig
from harness.strategies._verify import verify


def test_verifying_without_a_verifier_is_refused_by_name():
    """A strategy that verifies is checked for its verifier before it runs
    (``check_supported``); called directly without one, ``verify`` says what is missing."""
    with pytest.raises(ValueError, match="needs a verifier model"):
        verify(None, [], [], load_dataset("crema_d")[:1], StrategyConfig(), None)
