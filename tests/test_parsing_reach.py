"""How far back the parser reads an answer's dictionaries and lists (``READ_AT_MOST``), and the
dictionary scan that stops a little past the last number: the same verdicts where they reach,
and a verdict that says where reading stopped where they do not."""

from unittest import mock

from hypothesis import example, given
from hypothesis import strategies as st

from harness.parsing import READ_AT_MOST, parse_distribution
from tests.test_parsing import IEMOCAP, _pairs_at_every_separator, dictionary_pieces

STRAYS_WITHIN = (READ_AT_MOST - 3) // 2  # two labels' dictionary or list costs 3, a stray one 2


CUT_DICTIONARIES = ("read back from the end for 1,000 values of its dictionaries without a "
                    "distribution; not read further")
CUT_LISTS = ("read back from the end for 1,000 entries of its lists without a distribution; not "
             "read further")


def test_a_labelled_dictionary_is_found_behind_stray_ones_as_far_back_as_the_reach():
    labelled = '{"sad": 0.5, "angry": 0.5}'
    parsed = parse_distribution(labelled + "{a: 1}" * STRAYS_WITHIN, IEMOCAP)
    assert (parsed.rule, parsed.valid, parsed.probs.tolist()) == ("json_dict", True,
                                                                   [0, 0, 0.5, 0.5])
    parsed = parse_distribution(labelled + "{a: 1}" * (STRAYS_WITHIN + 1), IEMOCAP)
    assert (parsed.rule, parsed.valid) == ("json_dict", False)
    assert parsed.reason == (f"no key names a label: 'a', 'a', 'a', 'a', 'a' and "
                             f"{STRAYS_WITHIN - 5 + 1} more; {CUT_DICTIONARIES}")


def test_a_dictionary_of_more_values_than_the_reach_is_not_read():
    within = "{" + "sad: 1, angry: 1, " * ((READ_AT_MOST - 1) // 2) + "}"
    parsed = parse_distribution(within, IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("json_dict", [0, 0, 0.5, 0.5])
    parsed = parse_distribution("{" + "sad: 1, angry: 1, " * (READ_AT_MOST // 2) + "}", IEMOCAP)
    assert (parsed.rule, parsed.valid, parsed.reason) == ("json_dict", False, CUT_DICTIONARIES)


def test_plain_json_of_more_pairs_than_the_reach_is_read_as_the_general_rules_read_it():
    """orjson would read any number of pairs (the last of a repeated key kept): the fast path
    takes only what the general rules read whole, so both give one verdict."""
    within = "{" + ", ".join(['"sad": 1'] * (READ_AT_MOST - 1)) + "}"
    parsed = parse_distribution(within, IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("json_dict", [0, 0, 0, 1])
    parsed = parse_distribution("{" + ", ".join(['"sad": 1'] * READ_AT_MOST) + "}", IEMOCAP)
    assert (parsed.rule, parsed.valid, parsed.reason) == ("json_dict", False, CUT_DICTIONARIES)


def test_a_list_is_found_behind_other_lists_as_far_back_as_the_reach():
    labelled = "['sad', 'angry']"
    parsed = parse_distribution(labelled + "[x]" * STRAYS_WITHIN, IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("emotion_list", [0, 0, 0.5, 0.5])
    parsed = parse_distribution(labelled + "[x]" * (STRAYS_WITHIN + 1), IEMOCAP)
    assert (parsed.rule, parsed.valid, parsed.reason) == (None, False, CUT_LISTS)
    parsed = parse_distribution("[x]" * READ_AT_MOST + "[0.25, 0.75]", IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("float_list", [0.25, 0.75, 0, 0])  # in reach


def test_past_the_reach_nothing_is_guessed_by_a_later_rule():
    """Not the lists after the dictionaries, nor a keyword's one-hot from a dictionary's label
    names (a dictionary found is never read as prose), nor the keywords after the lists."""
    for text in ("{a: 1}" * (READ_AT_MOST // 2 + 1) + "[0.25, 0.75]",
                 "{" + ", sad: nan" * READ_AT_MOST + "}",
                 "sad " + "{}" * (READ_AT_MOST + 1)):
        parsed = parse_distribution(text, IEMOCAP)
        assert (parsed.rule, parsed.valid) == ("json_dict", False), text[:40]
        assert parsed.reason.endswith(CUT_DICTIONARIES)
    parsed = parse_distribution("sad " + "[]" * (READ_AT_MOST // 2 + 1), IEMOCAP)
    assert (parsed.rule, parsed.valid, parsed.reason) == (None, False, CUT_LISTS)


long_tails = st.sampled_from(["", "=" * 300, "-=" * 200, " :" * 200, "a" * 300, "é=" * 200])


@given(st.lists(dictionary_pieces | st.sampled_from(["١", "ınf", "İnf", "NaN", "INFINITY", "1e5%",
                                                     "infinityx", "nanx", "ﬁ"]),
                max_size=30).map("".join), long_tails)
@example("a: infinity%", "")
@example("a: inf", "=" * 300)
@example("a: NaN", "-=" * 200)
@example("a: infinityx", "=" * 300)  # not a value: no boundary after infinity, nor after inf
@example("a: \u0661", "é=" * 200)  # an Arabic-Indic digit: a number to the regex, not ASCII
def test_a_dictionary_scanned_no_further_than_its_last_number_reads_as_one_scanned_whole(
        body, tail):
    """With every dictionary's end looked for (the short ones too), the same pairs as the
    reading that looks at every separator, ASCII or not."""
    from harness._dict_pairs import pairs as _pairs

    for text in (body + tail, tail + body):
        with mock.patch("harness._dict_pairs._SHORT_BODY", 0):
            assert _pairs(text)[0] == _pairs_at_every_separator(text)
