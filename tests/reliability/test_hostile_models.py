"""Models that answer strangely: candidates without log-likelihoods, combinations that fail."""

import math

import numpy as np

from harness.data import load_dataset
from harness.strategies import run_strategy
from tests.fakes import ScriptedModel

BEAMS = [('{"Anger": 0.8, "Neutral": 0.2}', -1.0), ('{"Sadness": 1.0}', -2.0)]


def test_candidates_without_alpha_fail_their_item_only(record_property):
    """A server that returns no logprobs for some items: bon and w-bon give those items a reason
    (bon used to pick candidate 0 silently, w-bon to crash the whole run on the NaN)."""
    dataset = load_dataset("crema_d")[:6]
    silent = {dataset[1].id, dataset[4].id}

    def script(request, decoding):
        nan = request.item_id in silent
        return [(text, math.nan if nan else alpha) for text, alpha in BEAMS][: decoding.num_candidates]

    outcomes = {}
    for strategy in ("bon", "w-bon"):
        results = run_strategy(strategy, ScriptedModel(script), dataset)
        for r in results:
            if r.item_id in silent:
                assert r.probs is None and r.error is None
                assert r.reason == "the model returned no log-likelihood (alpha) for its valid candidates"
                assert not any(c["has_logprob"] for c in r.candidates)
            else:
                assert r.valid
        if strategy == "bon":  # the best α
            np.testing.assert_allclose(results[0].probs, [0.8, 0, 0, 0, 0.2, 0])
        outcomes[strategy] = sum(r.valid for r in results)
    assert outcomes == {"bon": 4, "w-bon": 4}
    record_property("reliability", "hostile models: candidates without alpha in 2 of 6 items under "
                                   "bon and w-bon: 4 items invalid with the reason, 8 valid, "
                                   "runs crashed 0")
