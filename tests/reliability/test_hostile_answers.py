"""Answers that look right but are not: verifier replies that are not a lone score, dictionary keys
that name no label, repeated keys. Each gets the defined value and says why."""

import numpy as np

from harness.parsing import parse_distribution, parse_score

LABELS = ("Neutral state", "Happiness", "Anger", "Sadness")
NOT_SCORES = ['{"Neutral state": 0.6, "Anger": 0.4}', "On a scale of 0.0 to 1.0 ... 0.8",
              "Step 1 ... Score: 0.3", "1e-3", "0,8", "7 out of 10, so 0.7"]
SCORES = {"0.8": 0.8, " Score: 0.3.\n": 0.3, "1": 1.0}
KEYS = {  # answer -> (valid, probabilities or None, what the reason must say)
    '{"\uff21nger": 0.7, "Sadness": 0.3}': (True, [0, 0, 0.7, 0.3], ""),
    '{"Anger\u200b": 0.7, "Sadness": 0.3}': (True, [0, 0, 0.7, 0.3], ""),
    '{"\u0410nger": 0.7, "Sadness": 0.3}': (False, None, "less than half of the probability mass"),
    '{"Boredom": 0.9, "Anger": 0.1}': (False, None, "keys naming no label: 'Boredom'"),
    '{"null": 1.0}': (False, None, "no key names a label: 'null'"),
    '{"Anger": 0.2, "Anger": 0.8, "Sadness": 0.2}': (True, [0, 0, 0.8, 0.2], ""),
}


def test_answers_that_look_right_get_the_defined_verdict(record_property):
    assert all(parse_score(text) is None for text in NOT_SCORES)
    assert {text: parse_score(text) for text in SCORES} == SCORES
    for text, (valid, probs, says) in KEYS.items():
        parsed = parse_distribution(text, LABELS)
        assert parsed.valid == valid and says in parsed.reason, (text, parsed)
        if probs is not None:
            np.testing.assert_allclose(parsed.probs, np.array(probs) / sum(probs))
    record_property("reliability", f"hostile answers: {len(NOT_SCORES)} verifier replies that are "
                                   f"not a score refused, {len(SCORES)} scores read, {len(KEYS)} "
                                   "dictionaries with foreign, disguised or repeated keys given "
                                   "their defined verdict and reason")
