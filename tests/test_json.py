import json

import pytest

from harness._json import NestedTooDeep, loads

DEEP = ["[" * 100_000, "[" * 5_000 + "]" * 5_000, '{"a": ' * 5_000 + "1" + "}" * 5_000]


@pytest.mark.parametrize("text", DEEP)
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
