
import numpy as np
import pytest

from harness.aggregate import dirichlet_mixture
from harness.data import load_dataset
from harness.models import get_model
from harness.models.api import Capabilities, Generation, LabelScores
from harness.strategies import (
    StrategyConfig,
    StrategyUnsupported,
    decoding_for,
    rule_counts,
    run_strategy,
    strategy_names,
)
from tests.fakes import ScriptedModel
from tests.helpers import corpus_copy

LABELS = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")
BEAMS = [  # (text, raw cumulative log-likelihood)
    ("garbage", -0.5),                         # best α but does not parse: drops out
    ('{"Anger": 0.8, "Neutral": 0.2}', -1.0),
    ('{"Sadness": 1.0}', -2.0),
    ('{"Anger": -1, "Fear": 2}', -0.1),        # invalid (negative)
    ('{"Fear": 0.5, "Neutral": 0.5}', -3.0),
]
VALID = np.array([[0.8, 0, 0, 0, 0.2, 0], [0, 0, 0, 0, 0, 1.0], [0, 0, 0.5, 0, 0.5, 0]])


def beams(request, decoding):
    if decoding.mode == "greedy":
        return [BEAMS[1]]
    return BEAMS[: decoding.num_candidates]


@pytest.fixture(scope="module")
def crema():
    return load_dataset("crema_d")[:4]


def test_bon_picks_the_best_valid_log_likelihood(crema):
    results = run_strategy("bon", ScriptedModel(beams), crema)
    np.testing.assert_allclose(results[0].probs, VALID[0])
    assert results[0].rule == "json_dict"
    assert [c["valid"] for c in results[0].candidates] == [False, True, True, False, True]


def test_bon_takes_the_first_of_beams_of_equal_log_likelihood(crema):
    tied = [('{"Sadness": 1.0}', -2.0), ('{"Anger": 1.0}', -1.0), ('{"Fear": 1.0}', -1.0)]
    results = run_strategy("bon", ScriptedModel(lambda r, d: tied[: d.num_candidates]), crema,
                           config=StrategyConfig(beams=3))
    assert results[0].probs.tolist() == [1.0, 0, 0, 0, 0, 0]  # Anger, the first of the two at -1


def test_w_bon_is_the_dirichlet_mixture_of_the_valid_beams(crema):
    results = run_strategy("w-bon", ScriptedModel(beams), crema, config=StrategyConfig(tau=3.0))
    expected = dirichlet_mixture(VALID, [-1.0, -2.0, -3.0])
    np.testing.assert_allclose(results[0].probs, expected)
    assert results[0].tokens == sum(len(t.split()) for t, _ in BEAMS)


def test_readout_and_sample_n(crema):
    model = ScriptedModel(beams, label_scores=lambda r: np.log([0.1, 0.1, 0.1, 0.1, 0.5, 0.1]))
    readout = run_strategy("readout", model, crema)[0]
    np.testing.assert_allclose(readout.probs, [0.1, 0.1, 0.1, 0.1, 0.5, 0.1])
    [evidence] = readout.candidates  # each label's score, kept as the item's one valid candidate
    assert {k: evidence[k] for k in ("rule", "valid", "chosen")} == {
        "rule": "readout", "valid": True, "chosen": True}
    np.testing.assert_allclose(evidence["label_logprobs"], np.log([0.1, 0.1, 0.1, 0.1, 0.5, 0.1]))
    np.testing.assert_allclose(evidence["probs"], readout.probs)
    far = ScriptedModel(beams, label_scores=lambda r: np.log([0.1, 0.1, 0.1, 0.1, 0.5, 0.1]) - 1e4)
    np.testing.assert_allclose(run_strategy("readout", far, crema)[0].probs, readout.probs)
    assert "Answer with the emotion only." in model_prompt(model, crema)
    samples = run_strategy("sample-n", ScriptedModel(beams), crema)[0]
    np.testing.assert_allclose(samples.probs, VALID.mean(axis=0))
    assert not any(c.get("chosen") for c in samples.candidates)  # the mean of all valid ones


def test_a_readout_item_the_model_could_not_score_carries_its_reason(crema):
    def scores(request):
        if request.item_id == crema[1].id:
            return LabelScores.failed(len(LABELS), "RuntimeError: boom")
        if request.item_id == crema[2].id:  # a backend's NaN logits, without an error of its own
            return LabelScores(np.array([0.0, np.nan, -1.0, -1.0, -1.0, -1.0]))
        return LabelScores(np.zeros(len(LABELS)), notes=(f"{request.item_id}: resampled",))

    results = run_strategy("readout", ScriptedModel(beams, label_scores=scores), crema)
    assert (results[1].error, results[1].reason) == ("RuntimeError: boom", "label scoring failed")
    assert results[2].probs is None and results[2].error == "non-finite label scores"
    assert results[0].valid and results[0].notes == [f"{crema[0].id}: resampled"]


def model_prompt(model, crema):
    prompts = []
    original = model.label_scores
    model.label_scores = lambda r: (prompts.append(r.prompt), original(r))[1]
    run_strategy("readout", model, crema)
    return prompts[0]


def test_no_valid_candidate_is_invalid_not_filled_in(crema):
    results = run_strategy("bon", ScriptedModel(lambda r, d: [("I cannot tell", -1.0)] * 5), crema)
    assert all(not r.valid and r.reason == "no valid candidate" for r in results)
    assert rule_counts(results) == {None: 4}
    two = run_strategy("bon", ScriptedModel(lambda r, d: [("I cannot tell", -1.0)] * 2), crema,
                       config=StrategyConfig(beams=2))
    assert all(r.reason == "no valid candidate" for r in two)  # each of several candidates
    one = run_strategy("base", ScriptedModel(lambda r, d: [("I cannot tell", -1.0)]), crema)
    assert all(r.reason == "no distribution found" for r in one)  # the one answer's own reason


def test_missing_capabilities_are_explicit(crema):
    no_beams = ScriptedModel(beams, capabilities=Capabilities(beam_search=False, logprobs=False))
    for strategy in ("bon", "w-bon", "alm-v"):
        with pytest.raises(StrategyUnsupported, match="beam_search"):
            run_strategy(strategy, no_beams, crema, verifier=no_beams)
    with pytest.raises(StrategyUnsupported, match="verifier"):
        run_strategy("alm-v", ScriptedModel(beams), crema)
    model = ScriptedModel(beams)
    with pytest.raises(StrategyUnsupported, match="^w-alm-v: the verifier uniform cannot score "
                                                  "candidates .a chance baseline generates nothing"):
        run_strategy("w-alm-v", model, crema, verifier=get_model("uniform"))
    assert model.calls == 0  # refused before the model ran, not once its beams were generated
    assert run_strategy("base", no_beams, crema)[0].valid
    for strategy, missing in (("readout", "label_logprobs"), ("sample-n", "n_candidates")):
        lacking = ScriptedModel(beams, capabilities=Capabilities(**{missing: False}))
        with pytest.raises(StrategyUnsupported, match=missing):
            run_strategy(strategy, lacking, crema)
        assert lacking.calls == 0


def test_a_bad_clip_costs_only_its_item(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    dataset = load_dataset("crema_d", root)
    dataset[1].audio_path.write_bytes(b"not a wav")
    results = run_strategy("base", ScriptedModel(beams), dataset)
    assert results[1].error and dataset[1].id in results[1].error and not results[1].valid
    assert all(r.valid for i, r in enumerate(results) if i != 1)


def test_decodings_match_the_reference_setup():
    config = StrategyConfig()
    assert decoding_for("bon", config) == decoding_for("w-bon", config)
    assert decoding_for("bon", config).num_candidates == 5
    assert decoding_for("alm-v", config).num_candidates == 3
    assert decoding_for("base", config).mode == "greedy"
    with pytest.raises(ValueError):
        decoding_for("majority-vote", config)
    constrained = StrategyConfig(constrained=True)
    assert decoding_for("bon", constrained, LABELS).json_labels == LABELS
    assert not decoding_for("cot", constrained, LABELS).constrained


def test_constrained_needs_structured_output(crema):
    plain = ScriptedModel(beams, capabilities=Capabilities(structured_output=False))
    with pytest.raises(StrategyUnsupported, match="structured output"):
        run_strategy("base", plain, crema, config=StrategyConfig(constrained=True))


@pytest.mark.parametrize("strategy", strategy_names())
def test_every_strategy_runs_on_the_tiny_model(strategy):
    pytest.importorskip("torch")
    model = get_model("tiny-qwen2-audio")
    dataset = load_dataset("iemocap")
    results = run_strategy(strategy, model, dataset, verifier=model)
    assert len(results) == len(dataset)
    assert sum(r.valid for r in results) / len(results) >= 0.9
    for r in results:
        if r.valid:
            assert r.probs.shape == (4,) and r.probs.sum() == pytest.approx(1.0)


def test_progress_is_reported_per_chunk(crema):
    seen = []
    run_strategy("base", ScriptedModel(beams), crema, progress=seen.append)
    assert seen == [len(crema)]


def test_alpha_is_a_choice_and_the_weights_are_kept(crema):
    """raw: softmax of the cumulative log-likelihood; mean: per token; uniform: every valid beam
    alike. The candidates keep their weights."""
    mixed = {}
    for alpha in ("raw", "mean", "uniform"):
        [first] = run_strategy("w-bon", ScriptedModel(beams), crema[:1],
                               config=StrategyConfig(alpha=alpha))
        usable = [c for c in first.candidates if c["valid"]]
        mixed[alpha] = ([c["weight"] for c in usable], first.probs)
    lengths = np.array([len(t.split()) for t, _ in BEAMS])[[1, 2, 4]]
    raw = np.array([-1.0, -2.0, -3.0])
    np.testing.assert_allclose(mixed["raw"][0], np.exp(raw) / np.exp(raw).sum())
    per_token = np.exp(raw / lengths) / np.exp(raw / lengths).sum()
    np.testing.assert_allclose(mixed["mean"][0], per_token)
    np.testing.assert_allclose(mixed["uniform"][0], [1 / 3] * 3)
    np.testing.assert_allclose(mixed["uniform"][1], VALID.mean(axis=0))
    with pytest.raises(ValueError, match="alpha must be one of"):
        StrategyConfig(alpha="normalised")


def test_w_bon_computes_its_mixture_under_every_alpha_with_its_prediction(crema):
    """The α comparison's mixtures come with the prediction: the configured α's row is the
    prediction to the last bit, and each row is the mixture under that α; where some choice
    weighs no beam (every α -inf under raw and mean), there are none, and the prediction is the
    configured choice's alone."""
    from harness.aggregate import dirichlet_mixtures
    from harness.strategies import ALPHAS, alpha_of

    for alpha in ALPHAS:
        [first] = run_strategy("w-bon", ScriptedModel(beams), crema[:1],
                               config=StrategyConfig(alpha=alpha))
        usable = [c for c in first.candidates if c["valid"]]
        rows = [[alpha_of(c, a) for c in usable] for a in ALPHAS]
        np.testing.assert_array_equal(first.alpha_mixtures, dirichlet_mixtures(VALID, rows))
        np.testing.assert_array_equal(first.alpha_mixtures[ALPHAS.index(alpha)], first.probs)
        assert not any(key.startswith("_") for c in first.candidates for key in c)
    unweighed = [(text, -np.inf) for text, _ in BEAMS]
    for alpha, valid in (("uniform", True), ("raw", False)):
        [first] = run_strategy("w-bon", ScriptedModel(lambda r, d: unweighed), crema[:1],
                               config=StrategyConfig(alpha=alpha))
        assert first.alpha_mixtures is None and first.valid == valid
        if valid:
            np.testing.assert_allclose(first.probs, VALID.mean(axis=0))
    assert run_strategy("bon", ScriptedModel(beams), crema[:1])[0].alpha_mixtures is None


def test_alpha_of_each_choice():
    from harness.strategies import alpha_of

    three = {"logprob": -3.0, "n_tokens": 3}
    assert [alpha_of(three, a) for a in ("raw", "mean", "uniform")] == [-3.0, -1.0, 0.0]
    assert alpha_of({"logprob": -3.0, "n_tokens": 1}, "mean") == -3.0
    assert alpha_of({"logprob": -3.0, "n_tokens": 0}, "mean") == -3.0  # no token: not a division by 0


def test_a_beam_without_a_log_likelihood_takes_no_part_and_none_says_why(crema):
    no_alpha = [('{"Anger": 1.0}', np.nan), ('{"Sadness": 1.0}', -2.0)]
    config = StrategyConfig(beams=2)
    for name in ("bon", "w-bon"):
        [one] = run_strategy(name, ScriptedModel(lambda r, d: no_alpha), crema[:1], config=config)
        assert one.probs.tolist() == [0, 0, 0, 0, 0, 1.0]  # the one beam with an α
        marks = [(c.get("chosen", False), c.get("weight")) for c in one.candidates]
        assert marks == ([(False, None), (True, None)] if name == "bon"  # picked
                         else [(False, None), (False, 1.0)])  # a mixture of one
    np.testing.assert_array_equal(one.alpha_mixtures, [[0, 0, 0, 0, 0, 1.0]] * 3)  # each α's
    none = [(text, np.nan) for text, _ in no_alpha]
    for name in ("bon", "w-bon"):
        [lost] = run_strategy(name, ScriptedModel(lambda r, d: none), crema[:1], config=config)
        assert lost.probs is None
        assert lost.reason == "the model returned no log-likelihood (alpha) for its valid candidates"


def test_an_item_without_a_transcript_says_so():
    dataset = load_dataset("msp_podcast")
    results = run_strategy("base", ScriptedModel(beams), dataset)
    silent = [r for r, item in zip(results, dataset) if not item.transcript.strip()]
    assert len(silent) == 1 and silent[0].notes == [
        f"{silent[0].item_id}: no transcript; the prompt's target utterance is empty"]
    assert all(not r.notes for r, item in zip(results, dataset) if item.transcript.strip())


def test_an_invalid_answer_that_used_the_whole_budget_is_said_to_be_cut_short(crema):
    config = StrategyConfig(max_new_tokens=5, cot_max_new_tokens=6)

    def answers(request, decoding):
        cut = "The speaker sounds like they are"  # six words: the script's tokens
        return [(cut if request.item_id == crema[0].id else "no idea", -1.0)]

    base = run_strategy("base", ScriptedModel(answers), crema[:2], config=config)
    assert base[0].reason.endswith("; it used all 5 new tokens: cut short?")
    assert "cut short" not in base[1].reason and not base[1].valid
    cot = run_strategy("cot", ScriptedModel(answers), crema[:2], config=config)
    assert cot[0].reason.endswith("; it used all 6 new tokens: cut short?")


def test_fewer_candidates_than_asked_for_are_noted_on_the_item(crema):
    """A server that ignores ``n`` gives one sample: sample-n's mean is then of one, and says so."""
    one = ScriptedModel(lambda request, decoding: [BEAMS[1]])
    results = run_strategy("sample-n", one, crema[:2])
    assert results[0].valid and results[0].notes == ["the model gave 1 of the 5 candidates asked for"]
    assert run_strategy("base", one, crema[:1])[0].notes == []


def test_a_failed_generation_costs_only_its_item_and_keeps_the_backends_notes(crema):
    """A request the model could not answer (a server's 500 after its retries) is that item's
    error, 'generation failed'; it is not also said to have given 0 of the 5 candidates."""
    failed = Generation(error="the server answered 500 after 4 retries", notes=("retried",))

    class FailingOne(ScriptedModel):
        def generate(self, requests, decoding):
            return [failed if r.item_id == crema[1].id else g
                    for r, g in zip(requests, super().generate(requests, decoding))]

    results = run_strategy("sample-n", FailingOne(lambda r, d: [BEAMS[1]] * 5), crema[:3])
    assert (results[1].error, results[1].reason) == (failed.error, "generation failed")
    assert results[1].notes == ["retried"] and not results[1].valid and results[1].probs is None
    assert results[0].valid and results[2].valid and results[0].notes == []


