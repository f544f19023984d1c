"""Audio Flamingo 3 on the fast path, checked against its own processor and plain ``generate``
on the tiny real-architecture model."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from fixtures import tiny_architectures  # noqa: E402
from harness.models import Decoding, Request, get_model  # noqa: E402
from tests.helpers import requests_for  # noqa: E402
from tests.models.test_context import assert_long_prompt_refused  # noqa: E402

LABELS = ["Neutral state", "Happiness", "Anger", "Sadness"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_architectures.build_audio_flamingo_3(tmp_path_factory.mktemp("af3"))


@pytest.fixture(scope="module")
def fast(weights):
    return get_model("audio-flamingo-3", path=weights, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def plain(weights):
    return get_model("audio-flamingo-3", path=weights, device="cpu", dtype="float32",
                     plain_generate=True)


@pytest.fixture(scope="module")
def reqs():
    return requests_for("iemocap", 5)[1]


def _candidates(generation):
    return [(c.text, c.n_tokens, c.finite) for c in generation.candidates]


def test_the_registry_gives_the_fast_path_with_its_own_cache_identity(fast, plain):
    assert type(fast).__name__ == "AudioFlamingo3Backend"
    assert ("backend", "audio-flamingo-3/2") in fast.info.options
    assert ("backend", "hf-generate/3") in plain.info.options  # cached apart


def test_prefill_equals_the_processors_30_second_path(fast, plain, reqs):
    with torch.inference_mode():
        ours = fast.prefill([r.audio for r in reqs], [r.prompt for r in reqs]).logits
        inputs = plain._inputs(reqs)
        assert inputs["input_features"].shape[-1] == 3000  # the reference pads to 30 s
        reference = plain.model(**inputs).logits[:, -1]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("decoding", [Decoding(max_new_tokens=10),
                                      Decoding(mode="beam", num_candidates=3, max_new_tokens=10),
                                      Decoding(mode="beam", num_candidates=5, max_new_tokens=6),
                                      Decoding(max_new_tokens=64, constrained=True,
                                               json_labels=tuple(LABELS)),
                                      Decoding(mode="beam", num_candidates=3, max_new_tokens=30,
                                               constrained=True, json_labels=tuple(LABELS))],
                         ids=["greedy", "beam-3", "beam-5", "greedy-json", "beam-3-json"])
def test_answers_equal_plain_generate(fast, plain, reqs, decoding):
    """Greedy tokens equal; beam search's candidates equal, in order, with the same raw α; on
    the eager and the static decode step alike; and kept to the JSON answer's template, with
    generate's ``prefix_allowed_tokens_fn`` where the fast path masks its own steps."""
    theirs = plain.generate(reqs, decoding)
    for decode in ("eager", "static"):
        ours = fast.with_options(decode=decode).generate(reqs, decoding)
        assert [_candidates(g) for g in ours] == [_candidates(g) for g in theirs], decode
        np.testing.assert_allclose([c.logprob for g in ours for c in g.candidates],
                                   [c.logprob for g in theirs for c in g.candidates], atol=1e-4)


def test_label_scores_equal_plain_forwards(fast, plain, reqs):
    ours = np.stack([row.logprobs for row in fast.label_logprobs(reqs, LABELS)])
    theirs = np.stack([row.logprobs for row in plain.label_logprobs(reqs, LABELS)])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_a_long_clips_windows_are_one_run_of_placeholders_as_the_processor_writes(fast, plain,
                                                                                   reqs):
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long-clip")
    chunking = fast.with_options(long_audio="chunk")
    with torch.inference_mode():
        ours = chunking.prefill([long.audio, reqs[1].audio], [long.prompt, reqs[1].prompt])
        inputs = plain._inputs([long, reqs[1]])
        assert inputs["input_features"].shape[0] == 3  # two windows of the long clip, one other
        reference = plain.model(**inputs).logits[:, -1]
    torch.testing.assert_close(ours.logits, reference, atol=1e-4, rtol=1e-4)
    out = fast.generate([long], Decoding(max_new_tokens=4))[0]
    assert out.candidates and out.notes == (
        "long-clip: 35.0 s clip truncated to the model's 30 s audio window",)


def test_several_decodings_share_one_prefill(fast, reqs):
    decodings = [Decoding(max_new_tokens=6), Decoding(mode="beam", num_candidates=3,
                                                      max_new_tokens=6)]
    together = fast.generate_many(reqs, decodings)
    for decoding, answers in zip(decodings, together):
        assert [_candidates(g) for g in answers] == [
            _candidates(g) for g in fast.generate(reqs, decoding)]


def test_weights_of_another_model_are_refused_not_started_at_random():
    """A Qwen2-Audio folder holds no Audio Flamingo 3 projector: transformers would start it at
    random and only log it; the harness names what is missing."""
    from harness import embedded_path
    from harness.models import ModelUnavailable

    with pytest.raises(ModelUnavailable, match=r"do not fit AudioFlamingo3ForConditionalGeneration: "
                                               r"4 of its parameters are missing .*projector"):
        get_model("audio-flamingo-3", path=embedded_path("tiny_qwen2_audio"), device="cpu",
                  dtype="float32")
    with pytest.raises(ModelUnavailable, match="4 of its parameters are missing"):
        get_model("audio-flamingo-3", path=embedded_path("tiny_qwen2_audio"), device="cpu",
                  dtype="float32", plain_generate=True)


def test_a_prompt_past_the_lms_context_is_refused_before_the_batch_runs(fast, reqs):
    assert_long_prompt_refused(fast, reqs)
