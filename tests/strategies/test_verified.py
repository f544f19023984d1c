"""The verifier strategies: ``alm-v`` (the candidate the verifier scored highest; of several
sharing the top score, the first or their mean) and ``w-alm-v`` (the mixture weighted by the
scores), and what they do with a candidate the verifier gave no score."""

import numpy as np
import pytest

from harness.aggregate import dirichlet_mixture
from harness.data import load_dataset
from harness.strategies import StrategyConfig, run_strategy
from tests.fakes import ScriptedModel
from tests.strategies.test_builtin import VALID, beams


@pytest.fixture(scope="module")
def crema():
    return load_dataset("crema_d")[:4]


def verifier_prompt_seen(verifier, crema):
    seen = []
    original = verifier.script
    verifier.script = lambda r, d: (seen.append(r.prompt), original(r, d))[1]
    run_strategy("alm-v", ScriptedModel(beams), crema, verifier=verifier)
    return "\n".join(seen)


def test_verifier_strategies_use_the_scores(crema):
    def verifier_script(request, decoding):
        # the verifier prefers the Sadness candidate
        return [("0.9" if '"Sadness": 1.0' in request.prompt else "score: 0.2", -1.0)]

    verifier = ScriptedModel(verifier_script, name="verifier")
    model = ScriptedModel(beams)
    picked = run_strategy("alm-v", model, crema, verifier=verifier)[0]
    np.testing.assert_allclose(picked.probs, VALID[1])
    assert [c["verifier_score"] for c in picked.candidates] == [0.2, 0.2, 0.9]
    weighted = run_strategy("w-alm-v", model, crema, verifier=verifier,
                            config=StrategyConfig(verifier_weighting="linear"))[0]
    np.testing.assert_allclose(weighted.probs, (0.2 * VALID[0] + 0.9 * VALID[1]) / 1.1)
    np.testing.assert_allclose([c.get("weight", np.nan) for c in weighted.candidates],
                               [np.nan, 0.2 / 1.1, 0.9 / 1.1])  # the evidence: each one's weight
    assert [c.get("chosen", False) for c in picked.candidates] == [False, False, True]
    assert not any(c.get("chosen") for c in weighted.candidates)  # a mixture: each one weighed
    assert picked.notes == weighted.notes == []  # every valid candidate was scored
    assert "Model Output: garbage" in verifier_prompt_seen(verifier, crema)


def test_alm_v_takes_the_first_of_candidates_sharing_the_top_score_or_their_mean(crema):
    """BEAMS[:5] with verifier_beams=5: valid are the Anger, Sadness and Fear answers; the
    verifier gives Sadness and Fear 0.9, Anger 0.5."""
    def two_top(request, decoding):
        return [("0.5" if '"Anger": 0.8' in request.prompt else "0.9", -1.0)]

    model, verifier = ScriptedModel(beams), ScriptedModel(two_top, name="verifier")
    five = {"verifier_beams": 5}
    first = run_strategy("alm-v", model, crema[:1], verifier=verifier,
                         config=StrategyConfig(**five))[0]
    np.testing.assert_allclose(first.probs, VALID[1])  # beam order: Sadness before Fear
    assert [c.get("chosen", False) for c in first.candidates] == [False, False, True, False, False]
    assert not any("weight" in c for c in first.candidates)
    mean = run_strategy("alm-v", model, crema[:1], verifier=verifier,
                        config=StrategyConfig(verifier_ties="mean", **five))[0]
    np.testing.assert_allclose(mean.probs, VALID[1:].mean(axis=0))
    assert mean.rule == "json_dict" and mean.notes == []
    assert [c.get("chosen", False) for c in mean.candidates] == [False, False, True, False, True]
    assert [c.get("weight") for c in mean.candidates] == [None, 0.0, 0.5, None, 0.5]
    one_top = run_strategy("alm-v", model, crema[:1], config=StrategyConfig(verifier_ties="mean"),
                           verifier=ScriptedModel(lambda r, d: [("0.3" if '"Anger": 0.8' in r.prompt
                                                                 else "0.2", -1.0)]))[0]
    np.testing.assert_allclose(one_top.probs, VALID[0])  # no tie: the one at the top
    assert [c.get("weight") for c in one_top.candidates] == [None, 1.0, 0.0]
    with pytest.raises(ValueError, match="verifier_ties must be one of"):
        StrategyConfig(verifier_ties="random")


def test_a_candidate_the_verifier_did_not_score_keeps_its_item(crema):
    """BEAMS[:3] for alm-v: valid candidates are the Anger and the Sadness answers."""
    def only_sadness(request, decoding):  # the Anger candidate gets a reply that is not a score
        return [("0.6" if '"Sadness": 1.0' in request.prompt else "no idea", -1.0)]

    def never(request, decoding):
        return [("I cannot tell.", -1.0)]

    model = ScriptedModel(beams)
    linear = {"verifier_weighting": "linear"}
    one = ScriptedModel(only_sadness, name="verifier")
    weighted = run_strategy("w-alm-v", model, crema[:1], verifier=one,
                            config=StrategyConfig(**linear))[0]
    np.testing.assert_allclose(weighted.probs, VALID[:2].mean(axis=0))  # lowest given: 0.6 each
    assert weighted.notes == ["the verifier scored 1 of 2 valid candidates; weighed as the lowest "
                              "score given"]
    best = run_strategy("alm-v", model, crema[:1], verifier=one)[0]
    np.testing.assert_allclose(best.probs, VALID[1])  # the one scored
    none = ScriptedModel(never, name="verifier")
    top = run_strategy("alm-v", model, crema[:1], verifier=none)[0]
    np.testing.assert_allclose(top.probs, VALID[0])  # the top valid beam
    assert [c.get("chosen", False) for c in top.candidates] == [False, True, False]  # marked so
    assert [c.get("chosen", False) for c in best.candidates] == [False, False, True]
    assert top.notes == ["the verifier scored 0 of 2 valid candidates; the top beam taken"]
    alike = run_strategy("w-alm-v", model, crema[:1], verifier=none, config=StrategyConfig(**linear))[0]
    np.testing.assert_allclose(alike.probs, VALID[:2].mean(axis=0))
    assert alike.notes == ["the verifier scored 0 of 2 valid candidates; all weighed alike"]
    dropped = run_strategy("alm-v", model, crema[:1], verifier=none,
                           config=StrategyConfig(unscored="drop"))[0]
    assert dropped.probs is None and dropped.reason == "the verifier scored none of the valid candidates"


def test_w_alm_v_weighs_an_unscored_candidate_as_the_lowest_score_given(crema):
    """Three valid candidates (verifier_beams=5 keeps BEAMS' three valid ones), two scored 0.9
    and 0.3: the third weighs 0.3, the lowest, not the highest nor nothing."""
    def two_of_three(request, decoding):
        score = {'"Anger": 0.8': "0.9", '"Sadness": 1.0': "0.3"}
        return [(next((s for key, s in score.items() if key in request.prompt), "unsure"), -1.0)]

    result = run_strategy("w-alm-v", ScriptedModel(beams), crema[:1],
                          verifier=ScriptedModel(two_of_three, name="verifier"),
                          config=StrategyConfig(verifier_beams=5, verifier_weighting="linear"))[0]
    expected = dirichlet_mixture(VALID, [0.9, 0.3, 0.3], weighting="linear")
    np.testing.assert_allclose(result.probs, expected)
    assert result.notes == ["the verifier scored 2 of 3 valid candidates; weighed as the lowest "
                            "score given"]
    from harness.strategies._builtin import verifier_scores_filled

    assert verifier_scores_filled([{}, {"verifier_score": None}]) == [0.0, 0.0]  # none: alike
    assert verifier_scores_filled([{"verifier_score": 0.4}, {}]) == [0.4, 0.4]


def test_the_verifier_answers_greedily_in_eight_tokens_and_a_long_reply_is_cut_in_the_evidence(
        crema):
    seen = []

    def rambling(request, decoding):
        seen.append((decoding.mode, decoding.max_new_tokens))
        return [("0.5 " + "because " * 500, -1.0)]

    [result] = run_strategy("alm-v", ScriptedModel(beams), crema[:1],
                            verifier=ScriptedModel(rambling, name="verifier"))
    assert set(seen) == {("greedy", 8)}
    replies = [c["verifier_reply"] for c in result.candidates]
    assert [len(r) for r in replies] == [2000] * 3 and replies[0].startswith("0.5 because")
