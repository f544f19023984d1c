"""Hostile model answers: the parser's time grows linearly with the answer, and its verdict on
each is the defined one (the old patterns backtracked for seconds on a few hundred spaces)."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.core import adversarial_outputs
from harness.parsing import parse_distribution

LABELS = ("Neutral state", "Happiness", "Anger", "Sadness")
HANG = 1.0  # seconds: a guard against super-linear blow-up (the target, 10 ms, is bench/core.py's)
EXPECTED = {  # (rule, valid) of each 100 kB answer
    "whitespace run": (None, False),
    "newlines then a sentence": ("keyword", True),
    "unterminated key": ("json_dict", True),
    "long word run": (None, False),
    "nested brackets": (None, False),
    "nested braces": (None, False),
    "open braces and words": (None, False),
    "key without a value": ("keyword", True),  # no number: the named emotion, as in prose
    "fenced lone number": ("single_number", False),
    "key runs before a colon": ("json_dict", True),
    "spaces before a key": ("json_dict", False),  # "x" names no label
    "separator flood": (None, False),
    "spaced separator flood": (None, False),
    "separators after quotes": (None, False),
    "key symbols before separators": (None, False),
    "many small dictionaries": ("json_dict", False),  # "a" names no label
    "many empty dictionaries": ("json_dict", False),  # read no further back than 1,000 values
    "a label before many dictionaries": ("json_dict", False),  # its label too far back
    "many lists": (None, False),
    "many empty lists": (None, False),
}
MORE = {  # inputs the old patterns took seconds on, at sizes that would have hung
    "spaces then a letter": " " * 20_000 + "x",
    "spaces then a key": "{" + " " * 100_000 + "x: 1}",
    "separator flood": "{" + ": 1 " * 25_000 + "}",
    "fenced spaces": "```" + " \n" * 50_000 + "json",
}


def test_adversarial_answers_parse_quickly_to_the_defined_verdict(record_property):
    slowest = 0.0
    cases = {**adversarial_outputs(), **MORE}
    for name, text in cases.items():
        start = time.perf_counter()
        parsed = parse_distribution(text, LABELS)
        slowest = max(slowest, time.perf_counter() - start)
        if name in EXPECTED:
            assert (parsed.rule, parsed.valid) == EXPECTED[name], name
        else:
            assert not parsed.valid, name
    assert slowest < HANG
    record_property("reliability", f"hostile text: {len(cases)} answers of 20-100 kB, slowest "
                                   f"parse {slowest * 1e3:.1f} ms, hangs 0")


repetitive = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.sampled_from([" ", "\n", "{", "[", '"Ang', "a ", "Anger ", ": 1 ", "{a ", "[1, ", "``` ",
                     '{"Anger": ', "0.", "sad "]),
    st.integers(1_000, 20_000),
    st.sampled_from(["", "x", "}", "]", "0.5", '{"Anger": 1}', "I feel sad.", "json"]))


@given(repetitive)
def test_long_repetitive_answers_never_hang_and_stay_on_the_simplex(text):
    start = time.perf_counter()
    parsed = parse_distribution(text, LABELS)
    assert time.perf_counter() - start < HANG
    if parsed.valid:
        assert parsed.probs.sum() == pytest.approx(1.0) and (parsed.probs >= 0).all()
