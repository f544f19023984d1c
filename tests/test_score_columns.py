"""A record's ``item_scores``: per-metric columns as base64 float64, read back exactly or refused."""

import base64
import math

import numpy as np
import pytest

from harness.score_columns import METRICS, ScoreColumns


def _written(ids=("a", "b")):
    values = {m: np.array([0.125 * (n + 1) for n in range(len(ids))]) for m in METRICS}
    values["r2"][-1] = math.nan
    return ScoreColumns(tuple(ids), values).to_json()


def test_columns_read_back_as_written_with_nan_kept():
    data = _written()
    assert data["dtype"] == "<f8" and data["ids"] == ["a", "b"]
    back = ScoreColumns.from_json(data)
    assert back.ids == ("a", "b") and back.values["js"].tolist() == [0.125, 0.25]
    assert back.values["r2"][0] == 0.125 and math.isnan(back.values["r2"][1])


@pytest.mark.parametrize(("change", "says"), [
    ({"ids": "ab"}, "'ids' is not a list of strings"),
    ({"ids": [1, 2]}, "'ids' is not a list of strings"),
    ({"dtype": ">f8"}, "dtype '>f8', not '<f8'"),
    ({"js": base64.b64encode(np.zeros(3).tobytes()).decode()}, "'js' has 3 values for 2 ids"),
])
def test_columns_of_another_shape_are_refused_naming_what(change, says):
    with pytest.raises(ValueError, match=says):
        ScoreColumns.from_json({**_written(), **change})


def test_a_column_with_characters_outside_base64_is_refused_not_skipped():
    data = _written()
    damaged = data["bc"][:4] + "!" + data["bc"][4:]  # the rest would still decode to 2 values
    with pytest.raises(ValueError):
        ScoreColumns.from_json({**data, "bc": damaged})
