import json

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from harness.parsing import RULES, parse_distribution, parse_score

IEMOCAP = ["Neutral state", "Happiness", "Anger", "Sadness"]
MSP = ["Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral"]
CREMA = ["Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness"]
ALIASES = {
    "Neutral state": ["neutral", "Neutral", "NEUTRAL STATE", "neutral_state"],
    "Happiness": ["happy", "Happy", "happiness", "joy"],
    "Anger": ["angry", "ANGER", "Angry"],
    "Sadness": ["sad", "Sad", "sadness"],
}


@pytest.mark.parametrize(
    ("text", "labels", "rule", "probs"),
    [
        ('{"Neutral state": 0.7, "Happiness": 0.1, "Anger": 0.1, "Sadness": 0.1}', IEMOCAP,
         "json_dict", [0.7, 0.1, 0.1, 0.1]),
        ("{'happy': 2, 'sad': 2}", IEMOCAP, "json_dict", [0, 0.5, 0, 0.5]),
        ('Thinking... {"Anger": 1.0}\nFinal: {"Anger": 0.2, "Sadness": 0.8}', IEMOCAP,
         "json_dict", [0, 0, 0.2, 0.8]),
        ('{"emotions": {"Angry": 0.5, "Neutral": 0.5}}', MSP, "json_dict",
         [0.5, 0, 0, 0, 0, 0, 0, 0.5]),
        ("{Anger: 30%, Fear: 70%}", CREMA, "json_dict", [0.3, 0, 0.7, 0, 0, 0]),
        ("{Anger: 70%, Fear: 0.3}", CREMA, "json_dict", [0.7, 0, 0.3, 0, 0, 0]),  # 70% is 0.7
        ("{Anger:\n0.25, Fear:\t'.25', Sadness:\r\n.5}", CREMA, "json_dict",
         [0.25, 0, 0.25, 0, 0, 0.5]),  # a value after a line break, a tab, a quote
        ("[70%, 0.3]", CREMA, "float_list", [0.7, 0.3, 0, 0, 0, 0]),
        ("['disgust', 'neutral']", CREMA, "emotion_list", [0, 0.5, 0, 0, 0.5, 0]),
        ("['disgust', 'boredom']", CREMA, "emotion_list", [0, 1, 0, 0, 0, 0]),
        ("[0.3, 0.2, 0.5]", IEMOCAP, "float_list", [0.3, 0.2, 0.5, 0]),
        ("[1, 1, 1, 1, 1, 1, 1]", IEMOCAP, "float_list", [0.25] * 4),
        ("The speaker sounds angry.", IEMOCAP, "keyword", [0, 0, 1, 0]),
        ("Happiness", IEMOCAP, "keyword", [0, 1, 0, 0]),
        # finite values whose sum is beyond a float's range: normalised, not "infinite"
        ('{"Anger": 1e308, "Sadness": 1e308}', IEMOCAP, "json_dict", [0, 0, 0.5, 0.5]),
        ("[1.5e308, 0, 1.5e308]", IEMOCAP, "float_list", [0.5, 0, 0.5, 0]),
    ],
)
def test_rules(text, labels, rule, probs):
    parsed = parse_distribution(text, labels)
    assert parsed.valid and parsed.rule == rule, parsed
    np.testing.assert_allclose(parsed.probs, probs)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("0.54", "single_number"),
        ("[0.54]", "single_number"),
        ('{"Anger": -0.2, "Sadness": 1.2}', "json_dict"),
        ('{"Anger": NaN, "Sadness": 1.0}', "json_dict"),
        ("{Anger:\n0.5, Happiness:\t' inf', Sadness:\r\n.5}", "json_dict"),  # read after a tab
        ('{"Anger": 0, "Sadness": 0.0} angry', "json_dict"),
        ("[0.5, -0.5, 1.0] I hear anger", "float_list"),
        ("[0, 0, 0]", "float_list"),
        ("[inf, 1]", "float_list"),
        ("[1e308, 1e308, 1e999]", "float_list"),
        ("[1e308, 1e308, -1]", "float_list"),
        ("[-1e308, -1e308]", "float_list"),  # their sum is -inf: scaled by -1e308, all positive
        ("", None),
        ("I cannot tell.", None),
        ("angry or sad, hard to say", None),  # two emotions named: not a one-hot
        ("{", None),
    ],
)
def test_invalid_outputs(text, rule):
    parsed = parse_distribution(text, IEMOCAP)
    assert not parsed.valid and parsed.probs is None and parsed.rule == rule and parsed.reason


def test_never_raises_on_non_text():
    for value in (None, 3, b"{}", ["Anger"]):
        assert not parse_distribution(value, IEMOCAP).valid


@pytest.mark.parametrize(("reply", "score"), [
    ("0.8", 0.8), ("  0.8.\n", 0.8), ("Score: 0.3", 0.3), ("score = 1", 1.0), ("1.", 1.0),
    (".5", 0.5), ("0", 0.0),
    # not a lone number in [0, 1]: not a score (the first number in the reply used to be taken)
    ('{"Neutral state": 0.6, "Anger": 0.4}', None), ("On a scale of 0.0 to 1.0 ... 0.8", None),
    ("Step 1 ... Score: 0.3", None), ("1e-3", None), ("0,8", None), ("1.5", None), ("-0.2", None),
    ("Score: 0.65 (reasonable)", None), ("7 out of 10, so 0.7", None), ("no idea", None),
    ("", None), ("Score:", None), (None, None),
    # the label's colon or equals sign needs no space after it, and is all that is skipped
    ("Score:1", 1.0), ("Score=0.25", 0.25), ("Score:10", None), ("Score10", None),
])
def test_a_score_is_a_reply_that_is_one_number_in_the_unit_interval(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize(("text", "probs", "valid", "reason"), [
    ('{"\uff21nger": 0.7, "Sadness": 0.3}', [0, 0, 0.7, 0.3], True, ""),  # full-width A
    ('{"Anger\u200b": 0.7, "Sadness": 0.3}', [0, 0, 0.7, 0.3], True, ""),  # zero-width space
    ('{"\u0410nger": 0.7, "Sadness": 0.3}', None, False,  # Cyrillic A: no label, most of the mass
     "less than half of the probability mass has a recognised label (keys naming no label: "
     "'\u0410nger')"),
    ('{"Boredom": 0.5, "Anger": 0.5}', [0, 0, 1, 0], True, "left out keys naming no label: 'Boredom'"),
    ('{"Boredom": 0.6, "Anger": 0.4}', None, False,  # just under half: invalid, not one-hot
     "less than half of the probability mass has a recognised label (keys naming no label: "
     "'Boredom')"),
    ('{"null": 1}', None, False, "no key names a label: 'null'"),
    ('{"Anger": 0.2, "Anger": 0.8, "Sadness": 0.2}', [0, 0, 0.8, 0.2], True, ""),  # last wins
])
def test_unrecognised_and_repeated_keys(text, probs, valid, reason):
    parsed = parse_distribution(text, IEMOCAP)
    assert (parsed.valid, parsed.reason) == (valid, reason)
    if probs is not None:
        np.testing.assert_allclose(parsed.probs, np.array(probs) / sum(probs))


# --- properties -------------------------------------------------------------------------

simplex = st.integers(2, 8).flatmap(
    lambda k: st.lists(st.floats(0, 1e6, allow_subnormal=False), min_size=k, max_size=k)
).filter(lambda v: sum(v) > 0).map(lambda v: np.array(v) / np.sum(v))
prose = st.text(alphabet=st.characters(categories=["Ll", "Lu", "Nd", "Zs"],
                                       include_characters=".,!?'\n"), max_size=80)


@given(st.text())
def test_never_raises_and_valid_results_lie_on_the_simplex(text):
    parsed = parse_distribution(text, IEMOCAP)
    assert parsed.rule in (*RULES, None)
    if parsed.valid:
        assert parsed.probs.shape == (4,)
        assert np.all(parsed.probs >= 0) and parsed.probs.sum() == pytest.approx(1.0)
    else:
        assert parsed.probs is None


@given(st.text(alphabet="{}[]:,'\"0123456789.-eE naAngerSdsHpyNutrl%"))
def test_never_raises_on_json_like_noise(text):
    parsed = parse_distribution(text, IEMOCAP)
    assert parsed.valid == (parsed.probs is not None)


@given(
    st.lists(st.floats(0, 1e3, allow_subnormal=False), min_size=4, max_size=4).filter(
        lambda v: sum(v) > 0),
    st.permutations(range(4)),
    st.lists(st.integers(0, 3), min_size=4, max_size=4),
    prose, prose,
    st.sampled_from(["{}", "```json\n{}\n```", "```\n{}\n```", "Answer: {} ."]),
    st.booleans(),
)
def test_json_written_any_way_parses_back(values, order, alias_pick, before, after, frame,
                                          compact):
    assume("{" not in before + after and "[" not in before + after)
    p = np.array(values) / np.sum(values)
    pairs = []
    for i in order:
        label = IEMOCAP[i]
        names = [label, *ALIASES[label]]
        pairs.append((names[alias_pick[i] % len(names)], float(p[i])))
    body = json.dumps(dict(pairs), separators=(",", ":") if compact else None)
    text = before + frame.replace("{}", body) + after
    parsed = parse_distribution(text, IEMOCAP)
    assert parsed.valid and parsed.rule == "json_dict"
    np.testing.assert_allclose(parsed.probs, p, atol=1e-6)


@given(simplex)
def test_any_simplex_vector_round_trips_over_its_own_labels(p):
    labels = MSP[: p.size]
    text = json.dumps(dict(zip(labels, p.tolist())))
    parsed = parse_distribution(text, labels)
    np.testing.assert_allclose(parsed.probs, p, atol=1e-6)


@given(st.sets(st.sampled_from(CREMA), min_size=1), st.sampled_from(["'", '"']))
def test_emotion_lists_are_uniform_over_the_named_classes(named, quote):
    text = "[" + ", ".join(f"{quote}{name.lower()}{quote}" for name in named) + ", 'other']"
    parsed = parse_distribution(text, CREMA)
    assert parsed.rule == "emotion_list"
    expected = np.array([1.0 if label in named else 0.0 for label in CREMA])
    np.testing.assert_allclose(parsed.probs, expected / expected.sum())


@given(st.lists(st.floats(0, 100, allow_subnormal=False), min_size=2, max_size=10).filter(
    lambda v: sum(v[:4]) > 0))
def test_float_lists_are_padded_or_trimmed_then_normalised(values):
    parsed = parse_distribution(json.dumps(values), IEMOCAP)
    assert parsed.rule == "float_list"
    padded = (values + [0.0] * 4)[:4]
    np.testing.assert_allclose(parsed.probs, np.array(padded) / sum(padded), atol=1e-9)


@given(st.floats(allow_nan=True, allow_infinity=True), st.booleans())
def test_a_single_number_is_never_a_distribution(x, bracket):
    text = f"[{x}]" if bracket else f"{x}"
    parsed = parse_distribution(text, IEMOCAP)
    assert not parsed.valid and parsed.rule == "single_number"


json_keys = st.one_of(st.sampled_from([*IEMOCAP, *sum(ALIASES.values(), []), "Boredom", "x"]),
                      st.text(alphabet="aAnN _-/!é:1", min_size=0, max_size=8))
json_values = st.one_of(st.floats(allow_nan=True), st.integers(-10**400, 10**400),
                        st.booleans(), st.none(), st.text(max_size=3))


@given(st.lists(st.tuples(json_keys, json_values), max_size=6), st.sampled_from(["", " ", "\n "]),
       st.booleans())
def test_the_plain_json_reading_agrees_with_the_general_rules(pairs, pad, compact):
    """The fast reading of one plain JSON object gives what the general rules give, wherever it
    answers at all (duplicate keys, strays, huge and non-finite numbers, odd keys included)."""
    from harness._label_index import label_index
    from harness.parsing import _parse_by_rules, _plain_json

    body = "{" + (", " if not compact else ",").join(
        f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
    idx = label_index(tuple(IEMOCAP))
    fast = _plain_json(pad + body + pad, idx)
    if fast is not None:
        slow = _parse_by_rules(pad + body + pad, idx)
        assert (fast.rule, fast.valid, fast.reason) == (slow.rule, slow.valid, slow.reason)
        assert (fast.probs is None) == (slow.probs is None)
        if fast.probs is not None:
            np.testing.assert_array_equal(fast.probs, slow.probs)


def test_plain_json_is_read_the_fast_way_and_the_rest_falls_through():
    from harness._label_index import label_index
    from harness.parsing import _plain_json

    idx = label_index(tuple(IEMOCAP))
    assert _plain_json('{"Anger": 0.5, "sad": 0.5}', idx).valid
    for text in ['{"Anger": "0.5"}', '{"Anger!": 1}', '{"Boredom": 1}', 'So {"Anger": 1}',
                 '{"a": {"Anger": 1}}', '{"Anger": NaN}', '{"\\u0041nger": 1}', "{}"]:
        assert _plain_json(text, idx) is None, text


def test_a_plain_answers_keys_are_remembered_as_a_row_and_a_long_row_is_not():
    from harness._label_index import label_index
    from harness.parsing import _plain_json

    idx = label_index(tuple(IEMOCAP))
    one, other = (_plain_json(t, idx) for t in ('{"Anger": 0.25, "sad": 0.75}',
                                                '{"sad": 0.75, "Anger": 0.25}'))
    np.testing.assert_array_equal(one.probs, other.probs)
    assert ("Anger", "sad") in idx._plain_rows and ("sad", "Anger") in idx._plain_rows
    spread = "Neutral" + " " * 5_000 + "state"  # read as "neutral state", never remembered
    assert _plain_json(f'{{"{spread}": 1}}', idx).probs[IEMOCAP.index("Neutral state")] == 1.0
    assert (spread,) not in idx._plain_rows


# the separator-and-number pattern as first written, before it turned any separator away
_VALUE_AS_WRITTEN = (r"""[:=](?=(\s*))\1(?:["'](?=(\s*))\2)?([-+]?(?:\d+(?:\.\d*)?|\.\d+)"""
                     r"""(?:[eE][-+]?\d+)?%?|[-+]?(?:nan|infinity|inf)\b)""")
def _keyword_hits_word_by_word(text, idx):
    """The keyword scan as first written (every word tried), kept as the reference."""
    from harness._label_index import WORD

    lowered = text.lower()
    words = [(m.start(), m.end()) for m in WORD.finditer(lowered)]
    longest = max(len(WORD.findall(key)) for key in idx.keys)
    hits, i = set(), 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            phrase = lowered[words[i][0]:words[i + n - 1][1]]
            if phrase in idx.keys:
                hits.add(idx.lookup(phrase))
                i += n
                break
        else:
            i += 1
    return hits


keyword_text = st.lists(st.sampled_from(["no", "emotion", "neutral", "state", "sad", "Sadness",
                                         "angry", "happy", "joy", "x", " ", "  ", ", ", "-", "\n",
                                         "no emotion", "neutral state", "1"]), max_size=25)


@given(keyword_text.map("".join), st.sampled_from([IEMOCAP, MSP, CREMA]))
def test_the_keyword_scan_names_what_the_word_by_word_scan_named(text, labels):
    """The same classes, whichever way the scan takes (the words' set, or the spellings'
    alternation where a spelling of several words can start)."""
    from harness._label_index import label_index
    from harness.parsing import _keyword_hits

    idx = label_index(tuple(labels))
    assert _keyword_hits(text, idx) == _keyword_hits_word_by_word(text, idx)


def _pairs_at_every_separator(body):
    """The dictionary reading as first written (every separator's key read back, none turned
    away by the character before it), kept as the reference."""
    import re

    as_written = re.compile(_VALUE_AS_WRITTEN, re.I)

    def key_before(start, end):
        end = start + len(body[start:end].rstrip())
        if end > start and body[end - 1] in "\"'":
            end = start + len(body[start:end - 1].rstrip())
        first = end
        while first > start and (body[first - 1].isalpha() or body[first - 1] in " _/-"):
            first -= 1
        while first < end and not body[first].isalpha():
            first += 1
        return body[first:end]

    out, start, previous = [], 0, 0
    for match in as_written.finditer(body):
        key = key_before(max(start, previous), match.start())
        previous = match.start() + 1
        if key:
            out.append((key, match.group(3)))
            start = match.end()
    return out


dictionary_pieces = st.sampled_from(["a", "anger", "Sad", "é", "৴", "²", " ", "\t", "\u3000", "_",
                                     "-", "/", ":", "=", "'", '"', "0.5", "1", "1e3", "nan", "inf",
                                     "%", "+", ".", ",", "!"])


@given(st.lists(dictionary_pieces, max_size=30).map("".join))
def test_a_dictionary_reads_as_it_did_when_every_separator_was_read_back(body):
    from harness._dict_pairs import pairs as _pairs

    assert _pairs(body)[0] == _pairs_at_every_separator(body)


@given(st.lists(dictionary_pieces, max_size=30).map("".join))
@example("a৴ anger:0.5")  # the engine's run holds a numeral: read again by hand, which stops at it
@example("{Neutral_state: 1, no emotion/at-all: 2, 9 key: 3")  # ASCII runs: stripped of theirs
def test_a_long_key_run_read_by_the_regex_engine_reads_as_one_read_by_hand(body):
    """With the run read by hand cut to two characters, every run past it goes through the
    reversed-text reading (and its numeral fallback): the same pairs."""
    from unittest import mock

    from harness._dict_pairs import pairs as _pairs

    with mock.patch("harness._dict_pairs._SHORT_RUN", 2):
        assert _pairs(body)[0] == _pairs_at_every_separator(body)


answers = st.one_of(st.text(alphabet="{}[]:,'\"0123456789.-eE naAngerSdsHpyNutrl%"),
                    st.lists(st.tuples(json_keys, json_values), max_size=6).map(
                        lambda pairs: json.dumps(dict(pairs))))


@given(answers)
def test_the_verdict_is_the_parse_with_its_distribution_as_a_list(text):
    """:func:`parse_verdict` (what a strategy's candidates keep) says what
    :func:`parse_distribution` says, its values the array's bit for bit."""
    from harness.parsing import parse_verdict

    verdict, parsed = parse_verdict(text, IEMOCAP), parse_distribution(text, IEMOCAP)
    assert (verdict.rule, verdict.valid, verdict.reason) == (parsed.rule, parsed.valid,
                                                             parsed.reason)
    assert verdict.probs == (None if parsed.probs is None else parsed.probs.tolist())
    assert parse_verdict(b"{}", IEMOCAP) == (None, None, "not text: bytes")


@given(st.lists(st.floats(0, 1e6, allow_subnormal=False), min_size=4, max_size=4).filter(
    lambda v: sum(v) > 0))
def test_a_found_vector_is_divided_by_its_sum_as_numpy_divides_it(values):
    """The shares are each value over the sum, correctly rounded: numpy's division of the
    array, which is what the parser computed before it kept lists (records stay bit for bit)."""
    text = json.dumps(dict(zip(IEMOCAP, values)))
    assert parse_distribution(text, IEMOCAP).probs.tolist() == (
        np.array(values) / sum(values)).tolist()


@pytest.mark.parametrize("text", [
    '{"Neutral state": -0.0, "Happiness": 0, "Anger": 1, "Sadness": -0}',  # plain JSON
    "So: {'Neutral state': -0.0, 'Happiness': 0, 'Anger': 1, 'Sadness': -0}"])  # the rules
def test_a_negative_zero_reads_as_a_zero_on_either_path(text):
    """A record never holds ``-0.0`` (which JSON would keep): both readings add each value to
    a zero."""
    assert repr(parse_distribution(text, IEMOCAP).probs.tolist()) == "[0.0, 0.0, 1.0, 0.0]"
