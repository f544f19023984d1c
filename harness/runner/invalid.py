"""How a cell scores an item whose answer gave no distribution (``StrategyConfig.invalid``).

Under ``left_out`` (the harness's reading) such an item is left out of every mean and counted;
under ``uniform`` it is scored as a uniform guess, 1/K for each of the K classes, the reading
that counts a failed answer as no information. Its record keeps why it was invalid (its reason)
and says it was filled in (the rule ``uniform_guess`` and a note); ``valid`` still counts the
items whose answer gave a distribution. An item that failed (its clip could not be read, the
model call failed, its candidates could not be combined: an ``error``) is left out under both:
that is no answer of the model's, and a rerun tries it again.
"""

from __future__ import annotations

import numpy as np

from harness.record import UNIFORM_GUESS
from harness.strategies import ItemResult


def read_invalid(results: list[ItemResult], reading: str, classes: int) -> list[ItemResult]:
    """``results``, each answer that gave no distribution filled in as a uniform guess where
    ``reading`` is ``"uniform"`` (in place; as they are under ``"left_out"``)."""
    if reading != "uniform":
        return results
    for result in results:
        if result.probs is None and result.error is None:
            result.probs = np.full(classes, 1.0 / classes)
            result.notes.append(f"scored as a uniform guess (invalid=uniform): {result.reason}")
            result.rule = UNIFORM_GUESS
    return results
