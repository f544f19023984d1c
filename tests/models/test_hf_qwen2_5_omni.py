"""Qwen2.5-Omni's thinker on the fast path, checked on the tiny real-architecture model against
the model's own forward and ``generate`` over the inputs its processor builds (30 s padded
features with their mask, each clip's placeholder repeated to its token count), built here from
the tokenizer and feature extractor so that no torchvision is needed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from fixtures import tiny_architectures  # noqa: E402
from fixtures.processor_inputs import omni_processor_inputs  # noqa: E402
from harness.models import Decoding, Request, get_model  # noqa: E402
from harness.models._hf_common import chosen_logprobs, generate_kwargs  # noqa: E402
from tests.helpers import requests_for  # noqa: E402
from tests.models.test_context import assert_long_prompt_refused  # noqa: E402

LABELS = ["Neutral state", "Happiness", "Anger", "Sadness"]


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    path = tiny_architectures.build_qwen2_5_omni_thinker(tmp_path_factory.mktemp("omni"))
    return get_model("qwen2.5-omni-7b", path=path, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def reqs():
    return requests_for("iemocap", 5)[1]


def reference_generate(backend, reqs, decoding):
    """Each clip's candidates from the model's own ``generate``, as HFGenerateBackend reads them."""
    inputs = omni_processor_inputs(backend, reqs)
    with torch.inference_mode():
        out = backend.model.generate(**inputs, **generate_kwargs(decoding),
                                     eos_token_id=backend.eos_ids, pad_token_id=backend.pad_id)
        steps = chosen_logprobs(backend.model, out, decoding)
    new = out.sequences[:, inputs["input_ids"].shape[1]:]
    rows = []
    for i in range(new.shape[0]):
        tokens = new[i].tolist()
        length = next((j + 1 for j, t in enumerate(tokens) if t in backend.eos_ids), len(tokens))
        rows.append((backend.tokenizer.decode(tokens[:length], skip_special_tokens=True), length,
                     float(steps[i, :length].double().sum())))
    n = decoding.num_candidates
    return [sorted(rows[c * n:(c + 1) * n], key=lambda r: -r[2]) for c in range(len(reqs))]


def test_the_registry_gives_the_thinker_on_the_fast_path_without_torchvision(fast):
    assert type(fast).__name__ == "Qwen2_5OmniThinkerBackend"
    assert type(fast.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert ("backend", "qwen2.5-omni-thinker/2") in fast.info.options


def test_prefill_equals_the_models_own_forward_on_the_processors_inputs(fast, reqs):
    with torch.inference_mode():
        ours = fast.prefill([r.audio for r in reqs], [r.prompt for r in reqs]).logits
        inputs = omni_processor_inputs(fast, reqs)
        assert inputs["input_features"].shape[-1] == 3000
        reference = fast.model(**inputs).logits[:, -1]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_clips_of_every_frame_count_modulo_four_prefill_as_the_models_own_forward(fast, reqs):
    """The encoder pools its frames twice by two: clips one frame apart (a hop of 160 samples)
    cross its token boundaries, where a frame too many marked real would give a token more."""
    clips = [Request(reqs[0].audio[: 16_000 + 160 * k], reqs[0].prompt, f"c{k}") for k in range(4)]
    with torch.inference_mode():
        ours = fast.prefill([r.audio for r in clips], [r.prompt for r in clips]).logits
        reference = fast.model(**omni_processor_inputs(fast, clips)).logits[:, -1]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("decoding", [Decoding(max_new_tokens=10),
                                      Decoding(mode="beam", num_candidates=3, max_new_tokens=10),
                                      Decoding(mode="beam", num_candidates=5, max_new_tokens=6)],
                         ids=["greedy", "beam-3", "beam-5"])
def test_answers_equal_the_models_own_generate(fast, reqs, decoding):
    """On the eager and the static decode step alike."""
    theirs = reference_generate(fast, reqs, decoding)
    for decode in ("eager", "static"):
        ours = fast.with_options(decode=decode).generate(reqs, decoding)
        assert [[(c.text, c.n_tokens) for c in g.candidates] for g in ours] == [
            [(text, length) for text, length, _ in row] for row in theirs], decode
        np.testing.assert_allclose([c.logprob for g in ours for c in g.candidates],
                                   [score for row in theirs for _, _, score in row], atol=1e-4)


def test_label_scores_equal_full_forwards(fast, reqs):
    ours = np.stack([row.logprobs for row in fast.label_logprobs(reqs[:2], LABELS)])
    end = fast.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for k, label in enumerate(LABELS):
        target = fast.tokenizer(label, add_special_tokens=False)["input_ids"] + [end]
        inputs = omni_processor_inputs(fast, reqs[:2])
        appended = torch.tensor([target] * 2)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], appended], 1)
        inputs["attention_mask"] = torch.cat([inputs["attention_mask"],
                                              torch.ones_like(appended)], 1)
        with torch.inference_mode():
            logits = fast.model(**inputs).logits[:, -len(target) - 1:-1].double()
        picked = torch.log_softmax(logits, -1).gather(2, appended[..., None])
        np.testing.assert_allclose(ours[:, k], picked.sum((1, 2)).numpy(), atol=1e-4)


def test_a_long_clip_is_truncated_with_a_note_and_decodings_share_a_prefill(fast, reqs):
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long-clip")
    decodings = [Decoding(max_new_tokens=6), Decoding(mode="beam", num_candidates=3,
                                                      max_new_tokens=6)]
    together = fast.generate_many([long, *reqs[1:3]], decodings)
    assert all(answers[0].notes == (
        "long-clip: 35.0 s clip truncated to the model's 30 s audio window",) for answers in together)
    for decoding, answers in zip(decodings, together):
        alone = fast.generate([long, *reqs[1:3]], decoding)
        assert [[c.text for c in g.candidates] for g in answers] == [
            [c.text for c in g.candidates] for g in alone]


def test_the_published_checkpoints_layout_loads_the_thinkers_own_weights(fast, reqs, tmp_path):
    """A whole Qwen2.5-Omni checkpoint (config nesting the thinker's, weights under
    ``thinker.``) gives the thinker its trained weights, not a random start: the same answers."""
    whole = get_model("qwen2.5-omni-7b", path=tiny_architectures.build_qwen2_5_omni_whole(
        tmp_path / "whole"), device="cpu", dtype="float32")
    assert type(whole.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    decoding = Decoding(mode="beam", num_candidates=2, max_new_tokens=6)
    assert [[c.text for c in g.candidates] for g in whole.generate(reqs, decoding)] == [
        [c.text for c in g.candidates] for g in fast.generate(reqs, decoding)]


def test_the_thinkers_parts_are_found_in_either_layout_transformers_gives_it():
    """Transformers 5.24 nests the thinker's towers and decoder in ``model.model``; 5.17 (the
    GPU machine's) leaves them flat: the audio tower on the thinker, the decoder as
    ``model.model``. Both are read (the whole file ran on 5.17 in CI's device venv)."""
    from types import SimpleNamespace

    from harness.models.fast_audio_lm import FastAudioLM

    flat = SimpleNamespace(audio_tower="tower", model="decoder", lm_head="head")
    assert FastAudioLM.parts(flat) == (flat, "tower", None, "decoder", "head")
    inner = SimpleNamespace(audio_tower="tower", language_model="decoder")
    nested = SimpleNamespace(model=inner, lm_head="head")
    assert FastAudioLM.parts(nested) == (inner, "tower", None, "decoder", "head")


def test_a_prompt_past_the_lms_context_is_refused_before_the_batch_runs(fast, reqs):
    assert_long_prompt_refused(fast, reqs)
