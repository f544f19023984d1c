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


def test_scores_pair_by_id_whatever_the_order_and_by_position_when_the_ids_are_the_same():
    mine = ScoreColumns(("a", "b", "c"), {m: np.array([1.0, 2.0, 3.0]) for m in METRICS})
    other = ScoreColumns(("c", "x", "a"), {m: np.array([30.0, 99.0, 10.0]) for m in METRICS})
    ours, theirs = mine.matched(other, ["js", "bc"])
    assert ours[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert theirs[[0, 2], 0].tolist() == [10.0, 30.0] and math.isnan(theirs[1, 0])  # 'c' first
    same = ScoreColumns(("a", "b", "c"), {m: np.array([4.0, 5.0, 6.0]) for m in METRICS})
    assert mine.matched(same, ["r2"])[1].tolist() == [[4.0], [5.0], [6.0]]


def test_columns_from_items_given_once_as_an_iterator():
    from types import SimpleNamespace

    items = [SimpleNamespace(id="a", scores={"js": 0.5}), SimpleNamespace(id="b", scores=None)]
    columns = ScoreColumns.from_items(iter(items))
    assert columns.ids == ("a", "b") and columns.values["js"][0] == 0.5
    assert math.isnan(columns.values["js"][1]) and math.isnan(columns.values["bc"][0])
    assert columns.made_from is None and ScoreColumns.from_items(tuple(items)).made_from is not None


def test_the_shared_id_lists_are_bounded():
    from harness.score_columns import _IDS, shared_ids

    _IDS.clear()  # a cache: what other tests left in it changes no answer
    first = shared_ids(["first"])
    assert shared_ids(["first"]) is first  # one tuple per id list
    for n in range(10_002):
        shared_ids([str(n)])
    assert len(_IDS) == 2 and shared_ids(["first"]) is not first  # cleared at 10,001, not grown
