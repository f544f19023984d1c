import json

import pytest

from harness._json import NestedTooDeep, NumberTooLarge, loads

# deeper than any Python's reader goes: 995 levels read on 3.11, 1,497 on 3.12, 9,998 on 3.13
DEEP = ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000]


@pytest.mark.parametrize("text", DEEP, ids=["open", "lists", "dicts"])  # not 100 kB ids
def test_a_document_nested_too_deeply_is_a_value_error_not_a_recursion_error(text):
    for data in (text, text.encode()):
        with pytest.raises(NestedTooDeep, match="nested deeper than the JSON reader goes"):
            loads(data)
    assert issubclass(NestedTooDeep, ValueError)


def test_anything_else_reads_as_json_loads_reads_it():
    assert loads(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert loads("[" * 200 + "]" * 200) == json.loads("[" * 200 + "]" * 200)
    assert loads("[1.5]", parse_float=str) == ["1.5"]
    with pytest.raises(json.JSONDecodeError):
        loads("{not json")


def test_an_integer_no_double_holds_is_a_value_error_and_any_other_is_read():
    """Every number the harness reads is used as a float: ``1`` and 400 zeros crashed the
    report, a baseline's gate and a record's reading with float()'s OverflowError."""
    huge = "1" + "0" * 400
    for data in (huge, f"[1, -{huge}]", f'{{"n": {huge}}}'.encode()):
        with pytest.raises(NumberTooLarge, match="an integer of 401 digits, beyond a double's range"):
            loads(data)
    assert issubclass(NumberTooLarge, ValueError)
    most = "1" + "0" * 308  # 10**308: a double holds it
    assert loads(f"[{most}, -{most}]") == [10**308, -(10**308)]
    assert loads(f'["{huge}"]') == [huge]  # digits in a string are text
    with pytest.raises(ValueError):  # over Python's 4,300 digits: its own ValueError
        loads("1" * 5_000)
    assert loads("[7]", parse_int=str) == ["7"]  # a reader's own conversion is its own
