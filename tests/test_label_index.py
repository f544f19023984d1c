"""``harness._label_index``: each class's spellings, the words a keyword scan starts from, and
memos that stay bounded whatever a model writes."""

import itertools

from harness._label_index import _MEMO_KEY_LENGTH, _MEMO_KEYS, WORD, LabelIndex

IEMOCAP = ("Neutral state", "Happiness", "Anger", "Sadness")


def test_each_class_s_spellings_and_the_keyword_scan_s_pattern():
    idx = LabelIndex(IEMOCAP)
    assert idx.lookup("no_emotion") == idx.lookup("Neutral-State") == 0
    assert idx.lookup("joyful") == 1 and idx.lookup("boredom") is None
    assert idx.spellings.findall("no emotion, neutral state, neutral statement, sad") == [
        "no emotion", "neutral state", "neutral", "sad"]  # the most words first, whole words
    assert idx.spellings.findall("joyful neutrality, no, unsad, sadness") == [
        "joyful", "neutrality", "sadness"]
    assert {"neutral", "neutrality", "happy", "angry", "sad", "no emotion"} <= idx.keys
    first_words = {WORD.findall(key)[0] for key in idx.keys}
    assert "no" not in idx.keys and {"neutral", "no", "sad"} <= first_words
    # the screen: a text holding any key's first word holds one of its words, each holding no other
    assert set(idx.screen) <= first_words and "sadness" not in idx.screen
    assert all(any(word in first for word in idx.screen) for first in first_words)
    assert not any(a != b and a in b for a in idx.screen for b in idx.screen)
    odd = LabelIndex(("Other (specify)", "Anger", "X"))  # \b cannot end a key at ")"
    assert "other (specify)" not in odd.keys and odd.lookup("Other (specify)") == 0
    assert {"anger", "x"} <= odd.keys


def test_the_memos_stay_bounded_whatever_a_model_writes():
    idx = LabelIndex(IEMOCAP)
    for n in range(_MEMO_KEYS + 50):
        assert idx.lookup(f"key {n}") is None and idx.plain_lookup(f"key{n}") is None
    assert len(idx._seen) == len(idx._plain) == _MEMO_KEYS == 10_000
    assert idx.lookup("Anger") == 2  # found still, only not remembered
    rows = itertools.islice(itertools.product(*map(spellings, ("anger", "sadness", "happy"))),
                            _MEMO_KEYS + 50)
    assert all(idx.plain_positions(row) == (2, 3, 1) for row in rows)  # each row another
    assert len(idx._plain_rows) == _MEMO_KEYS


def test_a_long_key_is_looked_up_but_not_remembered():
    idx = LabelIndex(IEMOCAP)
    for n in range(100):
        long_key = f"{n:03}" + "a" * (_MEMO_KEY_LENGTH - 3 + 1)
        assert idx.lookup(long_key) is None and idx.plain_lookup(long_key) is None
    assert idx.lookup("Sadness " + " " * _MEMO_KEY_LENGTH) == 3  # normalised, still found
    assert not idx._seen and not idx._plain
    assert idx.lookup("a" * _MEMO_KEY_LENGTH) is None and len(idx._seen) == 1  # at the limit: kept


def spellings(word):
    """``word`` in every mix of upper and lower case."""
    return ["".join(c) for c in itertools.product(*((ch, ch.upper()) for ch in word))]


def test_a_row_of_keys_is_remembered_up_to_32_characters_a_class():
    idx = LabelIndex(IEMOCAP)
    limit = 32 * len(IEMOCAP)
    at_limit = ("Neutral" + " " * (limit - 12) + "state",)
    beyond = ("Neutral" + " " * (limit - 11) + "state",)
    assert idx.plain_positions(at_limit) == idx.plain_positions(beyond) == (0,)
    assert at_limit in idx._plain_rows and beyond not in idx._plain_rows
    assert idx.plain_positions(("Anger", "boredom")) is None
