
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from fixtures import tiny_architectures  # noqa: E402
from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, ModelUnavailable, Request, get_model  # noqa: E402
from harness.prompts import base_prompt  # noqa: E402


@pytest.fixture(scope="module")
def af3_path(tmp_path_factory):
    return tiny_architectures.build_audio_flamingo_3(tmp_path_factory.mktemp("af3"))


@pytest.fixture(scope="module")
def af3(af3_path):
    return get_model("audio-flamingo-3", path=af3_path, device="cpu", dtype="float32",
                     plain_generate=True)


@pytest.fixture(scope="module")
def requests():
    dataset = load_dataset("iemocap")
    return [Request(it.load_audio(), base_prompt("iemocap", it.transcript, dataset.labels), it.id)
            for it in list(dataset)[:3]]


def test_audio_flamingo_3_loads_through_from_pretrained(af3):
    assert type(af3).__name__ == "HFGenerateBackend"
    assert type(af3.model).__name__ == "AudioFlamingo3ForConditionalGeneration"
    assert af3.info.name == "audio-flamingo-3" and af3.info.revision.startswith("sha256:")
    assert af3.info.capabilities.structured_output  # the JSON constraint is offered


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine whose torch sees no GPU")
def test_no_device_named_is_picked_and_a_gpu_torch_cannot_see_is_said(monkeypatch, af3_path):
    monkeypatch.setenv("HARNESS_GPUS", "0")
    with pytest.warns(UserWarning, match="audio-flamingo-3 runs on the CPU: GPUs are listed"):
        model = get_model("audio-flamingo-3", path=af3_path, dtype="float32", plain_generate=True)
    assert model.info.device == "cpu" and model.info.dtype == "float32"


def test_a_16_bit_model_is_given_its_audio_features_in_its_own_dtype(af3_path, requests):
    """The processor writes float32 features whatever the model: given them as they are, a
    bfloat16 Audio Flamingo 3 failed every request at once (which made plain ``generate`` look
    fast on a GPU)."""
    model = get_model("audio-flamingo-3", path=af3_path, device="cpu", dtype="bfloat16",
                      plain_generate=True)
    out = model.generate(requests[:1], Decoding(max_new_tokens=4))
    assert out[0].error is None and out[0].candidates[0].n_tokens > 0, out[0].error
    assert model._inputs(requests[:1])["input_features"].dtype == torch.bfloat16


def test_generation_modes_return_ranked_finite_candidates(af3, requests):
    for decoding in (Decoding(max_new_tokens=6),
                     Decoding(mode="beam", num_candidates=3, max_new_tokens=6),
                     Decoding(mode="sample", num_candidates=2, max_new_tokens=6, temperature=1.0)):
        out = af3.generate(requests, decoding)
        assert len(out) == 3
        for g in out:
            assert g.error is None and len(g.candidates) == decoding.num_candidates
            scores = [c.logprob for c in g.candidates]
            assert scores == sorted(scores, reverse=True)
            assert all(c.finite and np.isfinite(c.logprob) and c.logprob < 0 for c in g.candidates)


def test_beam_alpha_is_the_raw_sum_generate_reports(af3, requests):
    import torch

    decoding = Decoding(mode="beam", num_candidates=2, max_new_tokens=5)
    ours = af3.generate(requests[:1], decoding)[0]
    inputs = af3._inputs(requests[:1])
    from harness.models._hf_common import generate_kwargs

    with torch.inference_mode():
        out = af3.model.generate(**inputs, **generate_kwargs(decoding))
    np.testing.assert_allclose(sorted(c.logprob for c in ours.candidates),
                               sorted(out.sequences_scores.tolist()), atol=1e-4)


def test_sampled_alpha_is_the_models_own_likelihood_not_the_tempered_one(af3, requests):
    """α of a sample at temperature 0.5 with EOS blocked for 4 steps: the raw model's sum."""
    import torch

    decoding = Decoding(mode="sample", num_candidates=1, max_new_tokens=4, min_new_tokens=4,
                        temperature=0.5, seed=3)
    torch.manual_seed(3)
    inputs = af3._inputs(requests[:1])
    with torch.inference_mode():
        from harness.models._hf_common import chosen_logprobs, generate_kwargs

        out = af3.model.generate(**inputs, **generate_kwargs(decoding))
        ours = float(chosen_logprobs(af3.model, out, decoding).double().sum())
        full = dict(inputs, input_ids=out.sequences,
                    attention_mask=torch.ones_like(out.sequences))
        logits = af3.model(**full).logits[:, inputs["input_ids"].shape[1] - 1:-1].double()
    new = out.sequences[:, inputs["input_ids"].shape[1]:]
    raw = float(torch.log_softmax(logits, -1).gather(2, new[..., None]).sum())
    assert ours == pytest.approx(raw, abs=1e-3)


def test_label_scores(af3, requests):
    rows = af3.label_logprobs(requests, ["Neutral state", "Happiness", "Anger", "Sadness"])
    scores = np.stack([row.logprobs for row in rows])
    assert scores.shape == (3, 4) and np.isfinite(scores).all() and (scores < 0).all()


def test_a_prompt_past_the_context_is_its_items_error_and_the_rest_are_answered(af3, requests):
    long = Request(requests[1].audio, requests[1].prompt + "I said " * 3_000, "long-prompt")
    out = af3.generate([requests[0], long, requests[2]], Decoding(max_new_tokens=4))
    rows = af3.label_logprobs([long, requests[0]], ["Anger", "Sadness"])
    assert out[1].error.startswith("ValueError: prompt of ")
    assert out[1].error.endswith("with room for 4 new tokens is longer than the model's context "
                                 "of 4,096 tokens")
    assert all(g.error is None and g.candidates for g in out[::2])
    assert rows[0].error.startswith("ValueError: prompt of ") and rows[1].error is None


def test_qwen2_5_omni_thinker(tmp_path, requests):
    """Its whole processor loads without torchvision in transformers 5.17 and 5.24 (the
    versions tested); where one asks for it, the test says so."""
    path = tiny_architectures.build_qwen2_5_omni_thinker(tmp_path)
    try:
        model = get_model("qwen2.5-omni-7b", path=path, device="cpu", dtype="float32",
                          plain_generate=True)
    except ImportError as exc:
        if "torchvision" not in str(exc):
            raise
        pytest.skip(f"this transformers' Qwen2.5-Omni processor needs torchvision: {exc}")
    assert type(model).__name__ == "HFGenerateBackend"  # not the fast path
    out = model.generate(requests[:2], Decoding(max_new_tokens=4))
    assert all(g.error is None and g.candidates for g in out)


@pytest.mark.parametrize(("name", "variable"), [("qwen2.5-omni-7b", "QWEN2_5_OMNI_7B_PATH"),
                                                ("audio-flamingo-3", "AUDIO_FLAMINGO_3_PATH"),
                                                ("ultravox-v0.3", "ULTRAVOX_V0_3_PATH"),
                                                ("ultravox-v0.4", "ULTRAVOX_V0_4_PATH")])
def test_missing_weights_name_the_variable(monkeypatch, name, variable):
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("harness.models._hf_common.hf_cache_snapshot", lambda repo: None)
    with pytest.raises(ModelUnavailable, match=f"set {variable}"):
        get_model(name)


def test_audio_flamingo_2_says_what_to_install(monkeypatch):
    # as on a machine without NVIDIA's code, whatever another module's fixture installed
    # (test_af2_native puts a stand-in in sys.modules for its tests; xdist may interleave them)
    monkeypatch.setitem(sys.modules, "audio_flamingo_2", None)
    monkeypatch.setitem(sys.modules, "audio_flamingo_2.factory", None)
    with pytest.raises(ModelUnavailable, match="audio_flamingo_2"):
        get_model("audio-flamingo-2")


def test_a_processor_padding_on_the_right_is_turned_to_the_left(af3, requests):
    """generate appends to the batch's last column: a right-padded prompt would continue
    after its padding. Some processors pad on the right by default."""
    from harness.models.hf_generic import HFGenerateBackend

    af3.tokenizer.padding_side = "right"
    again = HFGenerateBackend("again", af3.model, af3.processor, af3.info.revision)
    assert again.tokenizer.padding_side == "left"
    assert [g.candidates for g in again.generate(requests, Decoding(max_new_tokens=4))] == \
        [g.candidates for g in af3.generate(requests, Decoding(max_new_tokens=4))]


def test_a_label_is_closed_by_the_chats_end_of_turn_whatever_the_eos(af3, requests):
    """A Qwen-style tokenizer may name <|endoftext|> its EOS while the chat closes a turn with
    <|im_end|>: a label is scored before the latter, as the fast path scores it."""
    from harness.models.hf_generic import HFGenerateBackend

    labels = ["Anger", "Sadness"]
    before = np.stack([r.logprobs for r in af3.label_logprobs(requests[:2], labels)])
    eos = af3.tokenizer.eos_token
    af3.tokenizer.eos_token = "<|endoftext|>"
    try:
        again = HFGenerateBackend("again", af3.model, af3.processor, af3.info.revision)
        after = np.stack([r.logprobs for r in again.label_logprobs(requests[:2], labels)])
    finally:
        af3.tokenizer.eos_token = eos
    assert again.turn_end == "<|im_end|>"
    np.testing.assert_allclose(after, before, atol=1e-5)


class _Template:
    def __init__(self, render):
        self.render = render

    def apply_chat_template(self, chat, tokenize):
        return self.render(chat)


def _refuse(chat):
    raise ValueError("no assistant turns in this template")


@pytest.mark.parametrize(("render", "expected"), [
    (lambda chat: "<|im_start|>assistant\n\x00PROMPT\x00<|im_end|>\n", "<|im_end|>"),
    (lambda chat: "A: " + (chat[1]["content"] if isinstance(chat[1]["content"], str) else "")
     + "<|endoftext|>", "<|endoftext|>"),  # takes only string content
    (lambda chat: "A: \x00PROMPT\x00", "<|im_end|>"),  # nothing after the answer: the EOS
    (_refuse, "<|im_end|>"),
])
def test_the_turn_end_comes_from_the_template_else_the_eos(af3, render, expected):
    from harness.models.hf_generic import turn_end

    assert af3.tokenizer.eos_token == "<|im_end|>"
    assert turn_end(_Template(render), af3.tokenizer) == expected


class _AddsABos:
    """A tokenizer that, as Llama's do, puts a BOS before any text unless told not to."""

    def __init__(self, tokenizer):
        self.inner, self.eos_token = tokenizer, tokenizer.eos_token

    def __call__(self, text, add_special_tokens=True):
        ids = self.inner(text, add_special_tokens=False)["input_ids"]
        return {"input_ids": ([self.inner.convert_tokens_to_ids("<|endoftext|>")] * add_special_tokens
                              + ids)}

    def convert_ids_to_tokens(self, token):
        return self.inner.convert_ids_to_tokens(token)


def test_the_turn_end_is_not_a_bos_the_tokenizer_would_add(af3):
    from harness.models.hf_generic import turn_end

    template = _Template(lambda chat: "A: \x00PROMPT\x00<|im_end|>\n")
    assert turn_end(template, _AddsABos(af3.tokenizer)) == "<|im_end|>"
