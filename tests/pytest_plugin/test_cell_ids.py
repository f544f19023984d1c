"""A grid cell read from a test's node id (``_cell_parts``, under ``group_key``): as the regular
expression it replaced read it, in time linear in the id's length."""

import re
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.pytest_plugin.scheduling import _cell_parts

# the regular expression group_key read cell ids with until it backtracked for a minute on a
# long id: the reference its linear reading must agree with
OLD_CELL = re.compile(r"\[(?P<model>.+)-(?P<dataset>iemocap|msp_podcast|crema_d)-"
                      r"(?P<strategy>[^\]]+)\](@.*)?$")
PIECES = st.sampled_from(["[", "]", "-", "@", "m", "x-y", "iemocap", "msp_podcast", "crema_d",
                          "w-bon", "base", "::test_", "/", "."])


@settings(max_examples=500)
@example(head="", inner="-iemocap-m", tail="")  # no model
@example(head="", inner="m-iemocap-", tail="")  # no strategy
@example(head="", inner="-iemocap--iemocap-", tail="")  # the last corpus is the strategy
@example(head="", inner="a]b-crema_d-w-bon", tail="@m")  # a bracket in the model
@example(head="[", inner="x-y-msp_podcast-a]b", tail="")  # a bracket in the strategy
@example(head="", inner="a[b-iemocap-c", tail="")  # an opening bracket in the model
@given(head=st.lists(PIECES, max_size=4).map("".join),
       inner=st.lists(PIECES, max_size=10).map("".join),
       tail=st.sampled_from(["", "@m", "@x-y", "@g]"]))
def test_cell_ids_read_as_the_regular_expression_read_them(head, inner, tail):
    """Ids of the grid's shape (a test's node id, its parameter in brackets, perhaps xdist's
    ``@group``) read as the old pattern read them, with whatever the pieces put in them."""
    nodeid = f"e/t.py{head}::test_cell[{inner}]{tail}"
    old = OLD_CELL.search(nodeid)
    if "::test_" not in nodeid or (old is not None and old.start() < nodeid.index("::test_")):
        return  # the pattern was searched after the test's name only where it held one
    if "]" in tail:
        return  # an @group holding a bracket: the old pattern's reach, no grid's id
    parts = _cell_parts(nodeid)
    assert parts == (None if old is None else (old["model"], old["dataset"], old["strategy"]))


@pytest.mark.parametrize("nodeid, cell", [
    ("tests/test_json.py::test_deep[" + "[" * 700_000 + "]", None),
    ("e/t.py::test_cell[" + "-iemocap-" * 100_000 + "]", "-iemocap-"),
    ("e/t.py::test_cell[" + "-" * 700_000 + "iemocap-x]", "x"),
], ids=["brackets", "corpora", "dashes"])
def test_a_long_id_is_read_at_once(nodeid, cell):
    """pytest 8 puts a string parameter's whole text in its test's id: with an id of 700,000
    brackets the old pattern held xdist's scheduler for a minute before any test ran (this
    suite's JSON tests have such ids); read in linear time, each of these takes milliseconds."""
    start = time.perf_counter()
    parts = _cell_parts(nodeid)
    assert time.perf_counter() - start < 0.5  # a minute before
    assert (parts and parts[2]) == cell
