"""Corpus options are checked before any file is read: the command line's text never reaches a
reader as a value of another kind (``False`` typed there is the text "False", which is true)."""

from pathlib import Path

import pytest

from harness.data import DataError, load_dataset
from harness.data.loader import checked_options
from harness.data.options import OptionError


@pytest.mark.parametrize("given, checked", [
    ({"merge_excited": "False"}, {"merge_excited": False}),
    ({"merge_excited": "TRUE"}, {"merge_excited": True}),
    ({"merge_excited": "no"}, {"merge_excited": False}),
    ({"merge_excited": 1}, {"merge_excited": True}),
    ({"merge_excited": False}, {"merge_excited": False}),
    ({"sessions": 2}, {"sessions": (2,)}),
    ({"sessions": [3, 1, 3]}, {"sessions": (1, 3)}),
    ({"sessions": ["1", 2]}, {"sessions": (1, 2)}),
    ({"sessions": None}, {"sessions": None}),
    ({"sessions": " 4 "}, {"sessions": (4,)}),
    ({"vote_mode": "split"}, {"vote_mode": "split"}),
])
def test_iemocap_values_take_one_form(given, checked):
    assert checked_options("iemocap", given) == checked


@pytest.mark.parametrize("given, says", [
    ({"merge_excited": "maybe"}, "iemocap option merge_excited takes true or false, not 'maybe'"),
    ({"merge_excited": 2}, "takes true or false, not 2"),
    ({"sessions": "abc"}, "sessions takes a whole number of at least 1 or a list of them"),
    ({"sessions": "[1"}, "sessions takes a whole number"),
    ({"sessions": []}, "sessions takes a whole number"),
    ({"sessions": [0]}, "sessions takes a whole number"),
    ({"sessions": [True]}, "sessions takes a whole number"),
    ({"sessions": [1.5]}, "sessions takes a whole number"),
    ({"vote_mode": "Split"}, "vote_mode takes one of per-category, split, not 'Split'"),
    ({"split": "Train"}, "unknown iemocap option 'split' (known: merge_excited, vote_mode, sessions)"),
])
def test_iemocap_refuses_a_value_naming_the_option_and_what_it_takes(given, says):
    with pytest.raises(OptionError, match=says.replace("(", r"\(").replace(")", r"\)")):
        checked_options("iemocap", given)


def test_msp_podcast_splits_take_one_spelling_and_unknown_ones_are_refused():
    assert checked_options("msp_podcast", {"split": "Test1"}) == {"split": ("Test1",)}
    assert checked_options("msp_podcast", {"split": ["Test1", "Train", "Test1"]}) == \
        {"split": ("Train", "Test1")}
    assert checked_options("msp_podcast", {"include_no_consensus": "false"}) == \
        {"include_no_consensus": False}
    for bad in ("test1", 5, [], ["Train", 3], {"a": 1}):
        with pytest.raises(OptionError, match="split takes one of Train, Development, Test1, Test2, "
                                              "Test3 or a list of them"):
            checked_options("msp_podcast", {"split": bad})


def test_crema_d_votes_file_is_a_path_that_must_be_a_file(tmp_path):
    assert checked_options("crema_d", {"votes_file": tmp_path / "v.csv"}) == \
        {"votes_file": str(tmp_path / "v.csv")}
    for bad in (5, "", "a\0b", ["x"]):
        with pytest.raises(OptionError, match="votes_file takes a file's path"):
            checked_options("crema_d", {"votes_file": bad})
    with pytest.raises(DataError, match="the votes_file option's label file not found"):
        load_dataset("crema_d", votes_file=tmp_path / "missing.csv")
    with pytest.raises(DataError, match="the votes_file option's label file is a directory"):
        load_dataset("crema_d", votes_file=tmp_path)


def test_load_dataset_checks_before_reading_and_records_the_checked_form():
    with pytest.raises(OptionError, match="merge_excited"):
        load_dataset("iemocap", Path("/nonexistent"), merge_excited="maybe")  # before the root
    text_false = load_dataset("iemocap", merge_excited="False")
    assert text_false.options == {"merge_excited": False}
    assert len(text_false) == len(load_dataset("iemocap", merge_excited=False))
    assert len(load_dataset("iemocap", merge_excited=True)) > len(text_false)


def test_sessions_that_select_nothing_say_so():
    with pytest.raises(DataError, match=r"the sessions option selects Session9, none of them here "
                                        r"\(it has Session1, Session2\)"):
        load_dataset("iemocap", sessions=[9])


@pytest.mark.parametrize("corpus, option", [("msp_podcast", "split"), ("crema_d", "votes_file"),
                                            ("iemocap", "sessions")])
def test_none_is_each_options_default(corpus, option):
    """None, as a grid's options may give it, means what leaving the option out means."""
    assert checked_options(corpus, {option: None}) == {option: None}
    assert len(load_dataset(corpus, **{option: None})) == len(load_dataset(corpus))
