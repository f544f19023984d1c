"""Evidence lines: strict JSON whatever the values (non-finite numbers as null, numpy as lists),
the standard library taking over where orjson refuses a value, and the same data either way;
read back strictly."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.record.json_line import json_line, read_json_line


def strict(line: bytes):
    return json.loads(line.decode("utf-8"), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_non_finite_numbers_are_null_and_numpy_is_written_as_lists():
    value = {"alpha": -math.inf, "nan": math.nan, "votes": np.array([4.0, np.nan, np.inf]),
             "level": np.int64(3), "probs": np.array([0.25, 0.75]), "nested": [{"x": math.inf}]}
    assert strict(json_line(value)) == {"alpha": None, "nan": None, "votes": [4.0, None, None],
                                        "level": 3, "probs": [0.25, 0.75],
                                        "nested": [{"x": None}]}
    assert b"\n" not in json_line({"text": "two\nlines"})


@pytest.mark.parametrize("refused", [
    "\ud800 a lone surrogate, as a server's JSON escape decodes",
    2 ** 70,
    np.arange(6.0)[::2],  # not contiguous
    {1: "an integer key"},
])
def test_what_orjson_refuses_is_written_by_the_standard_library_under_the_same_rules(refused):
    value = {"refused": refused, "alpha": -math.inf, "votes": np.array([1.0, np.nan])}
    out = strict(json_line(value))
    assert out["alpha"] is None and out["votes"] == [1.0, None]
    expected = refused.tolist() if isinstance(refused, np.ndarray) else refused
    assert out["refused"] == json.loads(json.dumps(expected))


def test_a_value_json_cannot_hold_is_a_type_error():
    with pytest.raises(TypeError):
        json_line({"model": object()})


finite = st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1) | finite
                      | st.text(), lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@given(values)
def test_finite_values_read_back_as_the_standard_library_writes_them(value):
    assert strict(json_line(value)) == json.loads(json.dumps(value))


any_text = (st.text(alphabet=st.characters(exclude_categories=()))  # lone surrogates allowed
            | st.sampled_from(["\ud800", "a \udfff b", "Ärger \U0001f620"]))


@given(st.recursive(st.none() | finite | any_text,
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(), inner, max_size=3), max_leaves=12))
def test_a_line_reads_back_as_written_lone_surrogates_included(value):
    assert read_json_line(json_line(value)) == value


@pytest.mark.parametrize(("line", "says"), [
    (b'{"a": NaN}', "NaN is not JSON"),
    (b'{"a": -Infinity}', "-Infinity is not JSON"),
    (b'{"a": 1e999}', "1e999 is beyond a double's range"),
    (b'{"a": "\xff"}', "utf-8"),
    (b'{"a": 1', "Expecting"),
    (b"[" * 100_000, "nested deeper than the JSON reader goes"),
])
def test_what_is_not_strict_json_is_a_value_error_that_says_why(line, says):
    with pytest.raises(ValueError, match=says):
        read_json_line(line)
