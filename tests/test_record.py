"""What a record says about its failures."""

from harness.record import CellMetrics, CellRecord, ItemRecord


def test_the_commonest_failure_is_named_for_the_assertion_message():
    down = "APIConnectionError: Connection refused"
    items = (ItemRecord("a", None, error=down), ItemRecord("b", None, error=down),
             ItemRecord("c", None, reason="no distribution in the answer"), ItemRecord("d", (1.0,)))
    record = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(4, 1, 0.25), 0.0, 0.0, items, {})
    assert record.commonest_failure() == f"2 of 4 items failed with: {down} (1 other reasons)"
    fine = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(1, 1, 1.0), 0.0, 0.0, items[3:], {})
    assert fine.commonest_failure() == ""
