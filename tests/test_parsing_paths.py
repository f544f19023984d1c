"""Parser paths the examples and properties of ``test_parsing.py`` do not take: each test here
kept a mutant of :mod:`harness.parsing` from living."""

import pytest

from harness.parsing import parse_distribution
from tests.test_parsing import IEMOCAP


def test_a_letter_whose_lower_case_is_longer_takes_the_regex_keyword_scan():
    """"İ" lower-cases to two characters, so the word positions of the lower-cased text would
    shift: such text is scanned by the regex over the text itself, with the same result."""
    parsed = parse_distribution("İ think the speaker sounds ANGRY here.", IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("keyword", [0.0, 0.0, 1.0, 0.0])
    assert not parse_distribution("İ hear anger and sadness.", IEMOCAP).valid  # two: none


@pytest.mark.parametrize("text", ["```json\n0.54\n```", "json 0.54", "``` [0.54] ```"])
def test_a_lone_number_in_a_code_fence_is_a_single_number(text):
    parsed = parse_distribution(text, IEMOCAP)
    assert (parsed.valid, parsed.rule) == (False, "single_number")


def test_a_parser_error_costs_its_item_with_the_reason_and_never_raises():
    from unittest import mock

    with mock.patch("harness.parsing._parse", side_effect=RecursionError("too deep")):
        parsed = parse_distribution('{"Anger": 1}', IEMOCAP)
    assert (parsed.valid, parsed.probs, parsed.rule) == (False, None, None)
    assert parsed.reason == "parser error: RecursionError: too deep"
    assert parse_distribution(None, IEMOCAP).reason == "not text: NoneType"


def test_a_key_after_a_long_run_of_spaces_is_read_whole():
    """More than 32 characters of the run before a separator are read by the regex engine on
    the reversed text: the key is still the label, not its last letters or nothing."""
    parsed = parse_distribution("{" + " " * 60 + "neutral state: 0.7, sad: 0.3}", IEMOCAP)
    assert parsed.valid and parsed.probs.tolist() == pytest.approx([0.7, 0.0, 0.0, 0.3])
    parsed = parse_distribution("{anger: 0.5,\n" + " " * 60 + "'happiness' = 0.5}", IEMOCAP)
    assert parsed.valid and parsed.probs.tolist() == pytest.approx([0.0, 0.5, 0.5, 0.0])


def test_a_dictionary_mostly_of_labels_keeps_them_and_names_the_stray_key():
    """Not plain JSON (single quotes), so the general rules read it: 0.6 of the mass has a
    label, so the stray key is left out and named, not the whole answer refused."""
    parsed = parse_distribution("{'Anger': 0.6, 'Boredom': 0.4}", IEMOCAP)
    assert parsed.valid and parsed.probs.tolist() == [0.0, 0.0, 1.0, 0.0]
    assert parsed.reason == "left out keys naming no label: 'Boredom'"
    parsed = parse_distribution("{'Anger': 0.6, 'Boredom': NaN}", IEMOCAP)  # no mass at all
    assert parsed.valid and parsed.reason == "left out keys naming no label: 'Boredom'"


def test_a_parsed_answer_is_frozen():
    import dataclasses

    parsed = parse_distribution('{"Anger": 1}', IEMOCAP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.valid = False


def test_a_dictionary_wins_over_a_list_in_the_same_answer():
    parsed = parse_distribution("Scores [0.1, 0.9] as {'Anger': 0.7, 'Sadness': 0.3}", IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("json_dict", [0.0, 0.0, 0.7, 0.3])


def test_a_stray_key_is_named_cut_to_forty_characters():
    key = "k" * 60
    parsed = parse_distribution(f"{{'{key}': 0.2, 'Anger': 0.8}}", IEMOCAP)
    assert parsed.reason == f"left out keys naming no label: '{'k' * 40}'"


def test_a_stray_key_with_an_infinite_value_weighs_nothing_against_the_labels():
    parsed = parse_distribution("{'Anger': 0.6, 'Boredom': inf}", IEMOCAP)
    assert parsed.valid and parsed.probs.tolist() == [0.0, 0.0, 1.0, 0.0]
    assert parsed.reason == "left out keys naming no label: 'Boredom'"


def test_a_key_after_a_value_spelled_in_letters_starts_after_that_value():
    """``nan`` ends in letters, yet the next key is read from after it: "sad", not "nan sad"."""
    parsed = parse_distribution("{boredom: nan sad: 0.5}", IEMOCAP)
    assert (parsed.rule, parsed.valid, parsed.probs.tolist()) == ("json_dict", True, [0, 0, 0, 1])
    assert parsed.reason == "left out keys naming no label: 'boredom'"


@pytest.mark.parametrize(("keys", "named"), [
    ("abcde", "'a', 'b', 'c', 'd', 'e'"), ("abcdefg", "'a', 'b', 'c', 'd', 'e' and 2 more"),
])
def test_the_first_five_unknown_keys_are_named_and_the_rest_counted(keys, named):
    text = "{" + ", ".join(f'"{key}": 1' for key in keys) + "}"
    assert parse_distribution(text, IEMOCAP).reason == f"no key names a label: {named}"


@pytest.mark.parametrize("text", ["Is the speaker calm? No, sad.", "sad, no"])
def test_a_word_that_starts_a_longer_spelling_and_ends_none_hides_nothing_around_it(text):
    """"no" starts "no emotion" (Neutral): a word right after it, or "no" as the last word, is
    still read."""
    parsed = parse_distribution(text, IEMOCAP)
    assert (parsed.rule, parsed.probs.tolist()) == ("keyword", [0.0, 0.0, 0.0, 1.0])
