import dataclasses
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


from harness.data import load_dataset  # noqa: E402
from harness.models import (  # noqa: E402
    Decoding,
    ModelAPI,
    ModelUnavailable,
    Request,
    get_model,
    model_names,
)
from harness.models._hf_common import batched  # noqa: E402
from harness.parsing import parse_distribution  # noqa: E402
from tests.helpers import requests_for  # noqa: E402


def test_tiny_model_is_a_real_qwen2_audio_loaded_through_from_pretrained(tiny):
    assert isinstance(tiny, ModelAPI)
    assert type(tiny.model).__name__ == "Qwen2AudioForConditionalGeneration"
    assert tiny.info.name == "tiny-qwen2-audio" and tiny.info.revision.startswith("sha256:")
    assert tiny.info.capabilities.beam_search and tiny.info.device == "cpu"
    assert "tiny-qwen2-audio" in model_names() and "qwen2-audio-7b" in model_names()


def test_the_7b_entry_runs_the_checkpoint_it_is_given_under_its_own_name(tiny):
    """``qwen2-audio-7b`` with a path loads that folder (here the tiny model's, a real
    Qwen2-Audio checkpoint) on the same backend, named as the 7B: its own cache identity."""
    from harness import embedded_path

    model = get_model("qwen2-audio-7b", path=str(embedded_path("tiny_qwen2_audio")),
                      device="cpu", dtype="float32")
    assert type(model) is type(tiny) and model.info.name == "qwen2-audio-7b"
    assert model.info.revision == tiny.info.revision


def test_a_tiny_model_path_that_is_no_folder_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TINY_QWEN2_AUDIO_PATH", str(tmp_path / "missing"))
    with pytest.raises(ModelUnavailable, match=r"^tiny-qwen2-audio: .*missing: .*"
                                               r"\(TINY_QWEN2_AUDIO_PATH\)$"):
        get_model("tiny-qwen2-audio")


def test_prefill_equals_the_processors_padded_path(tiny):
    """Encoder over the longest clip only, template prefix cached once: same logits."""
    dataset, reqs = requests_for("iemocap", 3)
    audios, prompts = [r.audio for r in reqs], [r.prompt for r in reqs]
    with torch.inference_mode():
        ours = tiny.prefill(audios, prompts).logits
        texts = [tiny.render(p, 1) for p in prompts]
        inputs = tiny.processor(text=texts, audio=audios, sampling_rate=16_000,
                                return_tensors="pt", padding=True)
        assert inputs["input_features"].shape[-1] == 3000  # the reference pads to 30 s
        reference = tiny.model(**inputs).logits[:, -1]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_a_batch_of_whole_30_s_windows_prefills_as_the_processors_path(tiny):
    """Clips that fill the encoder's window leave no frame to mask."""
    dataset, reqs = requests_for("iemocap", 2)
    audios = [np.resize(r.audio, 16_000 * 30) for r in reqs]
    prompts = [r.prompt for r in reqs]
    with torch.inference_mode():
        ours = tiny.prefill(audios, prompts).logits
        inputs = tiny.processor(text=[tiny.render(p, 1) for p in prompts], audio=audios,
                                sampling_rate=16_000, return_tensors="pt", padding=True)
        reference = tiny.model(**inputs).logits[:, -1]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_beam_search_equals_hf_generate_without_length_penalty(tiny):
    _, reqs = requests_for("crema_d", 1)
    ours = tiny.generate(reqs, Decoding(mode="beam", num_candidates=3, max_new_tokens=10))[0]
    text = tiny.render(reqs[0].prompt, 1)
    inputs = tiny.processor(text=[text], audio=[reqs[0].audio], sampling_rate=16_000,
                            return_tensors="pt")
    with torch.inference_mode():
        hf = tiny.model.generate(**inputs, num_beams=3, num_return_sequences=3, max_new_tokens=10,
                                 do_sample=False, length_penalty=0.0, early_stopping=False,
                                 output_scores=True, return_dict_in_generate=True)
    start = inputs["input_ids"].shape[1]
    hf_texts = [tiny.tokenizer.decode(s[start:], skip_special_tokens=True) for s in hf.sequences]
    assert [c.text for c in ours.candidates] == hf_texts
    np.testing.assert_allclose([c.logprob for c in ours.candidates],
                               hf.sequences_scores.numpy(), atol=1e-4)


@pytest.mark.parametrize("corpus", ["iemocap", "msp_podcast", "crema_d"])
def test_base_outputs_parse_on_at_least_90_percent_and_beams_differ(tiny, corpus):
    dataset, reqs = requests_for(corpus)
    outputs = tiny.generate(reqs, Decoding())
    valid = [parse_distribution(g.candidates[0].text, dataset.labels).valid for g in outputs]
    assert sum(valid) / len(valid) >= 0.9
    beams = tiny.generate(reqs[:3], Decoding(mode="beam", num_candidates=5))
    for g in beams:
        assert len({c.text for c in g.candidates}) > 1
        scores = [c.logprob for c in g.candidates]
        assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)


def test_sampling_is_seeded_and_label_scores_are_finite(tiny):
    dataset, reqs = requests_for("iemocap", 2)
    decoding = Decoding(mode="sample", num_candidates=4, temperature=1.0, seed=3)
    a, b = tiny.generate(reqs, decoding), tiny.generate(reqs, decoding)
    assert [c.text for c in a[0].candidates] == [c.text for c in b[0].candidates]
    scores = np.stack([row.logprobs for row in tiny.label_logprobs(reqs, dataset.labels)])
    assert scores.shape == (2, 4) and np.isfinite(scores).all() and (scores < 0).all()


def test_long_clip_is_truncated_with_a_note(tiny):
    _, reqs = requests_for("iemocap", 2)
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long-clip")
    out = tiny.generate([long, reqs[1]], Decoding(max_new_tokens=4))
    assert out[0].error is None and out[0].candidates
    assert out[0].notes == ("long-clip: 35.0 s clip truncated to the model's 30 s audio window",)
    assert out[1].notes == ()


def test_long_clips_can_be_refused_per_item_instead(tiny):
    _, reqs = requests_for("iemocap", 2)
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long-clip")
    refusing = tiny.with_options(long_audio="error")
    out = refusing.generate([reqs[0], long, reqs[1]], Decoding(max_new_tokens=4))
    scores = refusing.label_logprobs([long, reqs[1]], ["Anger", "Sadness"])
    assert out[1].error == "35.0 s clip is longer than the model's 30 s audio window"
    assert out[0].candidates and out[2].candidates
    assert np.isnan(scores[0].logprobs).all() and np.isfinite(scores[1].logprobs).all()
    assert scores[0].error == out[1].error and scores[1].error is None
    assert get_model("tiny-qwen2-audio", long_audio="error").options.long_audio == "error"
    assert tiny.options.long_audio == "truncate"


def test_long_clips_can_be_heard_as_successive_audios_instead(tiny):
    """``long_audio="chunk"``: the clip's 30 s pieces go in as "Audio 1", "Audio 2" of one turn,
    exactly as the processor builds a two-audio conversation."""
    _, reqs = requests_for("iemocap", 2)
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long-clip")
    chunking = tiny.with_options(long_audio="chunk")
    with torch.inference_mode():
        ours = chunking.prefill([long.audio, reqs[1].audio], [long.prompt, reqs[1].prompt]).logits
    out = chunking.generate([long, reqs[1]], Decoding(mode="beam", num_candidates=2, max_new_tokens=6))
    scores = chunking.label_logprobs([long, reqs[1]], ["Anger", "Sadness"])
    text = tiny.render(long.prompt, [1, 1])
    assert text.count("<|AUDIO|>") == 2 and "Audio 2:" in text
    pieces = [long.audio[: 30 * 16_000], long.audio[30 * 16_000:]]
    with torch.inference_mode():
        inputs = tiny.processor(text=[text], audio=pieces, sampling_rate=16_000, return_tensors="pt")
        reference = tiny.model(**inputs).logits[:, -1]
    torch.testing.assert_close(ours[:1], reference, atol=1e-4, rtol=1e-4)
    assert all(g.error is None and len(g.candidates) == 2 for g in out)
    assert all(np.isfinite(row.logprobs).all() for row in scores)
    note = "long-clip: 35.0 s clip given to the model as 2 audios of at most 30 s"
    assert out[0].notes == scores[0].notes == (note,) and out[1].notes == scores[1].notes == ()
    with pytest.raises(ValueError, match="long_audio must be one of"):
        get_model("tiny-qwen2-audio", long_audio="split")


def test_out_of_memory_halves_the_batch_and_loses_nothing():
    seen = []

    def run(chunk):
        seen.append(len(chunk))
        if len(chunk) > 2:
            raise torch.OutOfMemoryError("simulated")
        return [r.item_id for r in chunk]

    reqs = [Request(np.zeros(100 * (i + 1), np.float32), "", f"r{i}") for i in range(7)]
    with pytest.warns(UserWarning, match="batch size halved"):
        out = batched(reqs, run, 8, torch, on_error=lambda _, reason: reason)
    assert out == [f"r{i}" for i in range(7)]
    assert seen[:3] == [7, 4, 2]  # 8 -> 4 -> 2, then every chunk fits


def test_a_failing_request_is_isolated():
    def run(chunk):
        if any(r.item_id == "bad" for r in chunk):
            raise RuntimeError("boom")
        return [r.item_id for r in chunk]

    reqs = [Request(np.zeros(10, np.float32), "", name) for name in ("a", "bad", "c")]
    assert batched(reqs, run, 8, torch, on_error=lambda r, reason: f"{r.item_id} error: {reason}") == [
        "a", "bad error: RuntimeError: boom", "c"]


def test_missing_weights_name_the_variable(monkeypatch):
    monkeypatch.delenv("QWEN2_AUDIO_7B_PATH", raising=False)
    monkeypatch.setattr("harness.models._hf_common.hf_cache_snapshot", lambda repo: None)
    with pytest.raises(ModelUnavailable, match="set QWEN2_AUDIO_7B_PATH"):
        get_model("qwen2-audio-7b")
    with pytest.raises(ValueError, match="unknown model"):
        get_model("gpt-5-audio")


def test_importing_the_models_package_loads_no_framework():
    code = ("import sys, harness.models, harness.strategies, harness.cache\n"
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_readout_scores_equal_a_full_forward_per_label(tiny):
    from harness.prompts import readout_prompt

    dataset = load_dataset("msp_podcast")
    reqs = [Request(it.load_audio(), readout_prompt("msp_podcast", it.transcript, dataset.labels))
            for it in list(dataset)[:2]]
    ours = np.stack([row.logprobs for row in tiny.label_logprobs(reqs, dataset.labels)])
    end = tiny.tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.inference_mode():
        for i, r in enumerate(reqs):
            for k, label in enumerate(dataset.labels):
                ids = tiny.tokenizer(label, add_special_tokens=False)["input_ids"] + [end]
                text = tiny.render(r.prompt, 1) + tiny.tokenizer.decode(ids)
                enc = tiny.processor(text=[text], audio=[r.audio], sampling_rate=16_000,
                                     return_tensors="pt")
                assert enc["input_ids"][0, -len(ids):].tolist() == ids
                logp = torch.log_softmax(tiny.model(**enc).logits[0, -len(ids) - 1:-1].float(), -1)
                expected = logp.gather(1, torch.tensor(ids)[:, None]).sum().item()
                assert ours[i, k] == pytest.approx(expected, abs=1e-4)



def test_prompt_length_bound_covers_the_real_prefill(tiny):
    _, reqs = requests_for("iemocap", 6)
    with torch.inference_mode():
        state = tiny.prefill([r.audio for r in reqs], [r.prompt for r in reqs])
    real = state.attention_mask.shape[1]
    assert real <= tiny.chat.longest_prompt(reqs, 30 * 16_000, chunked=False) <= real + 8


def test_features_equal_the_extractors_own_padding_path(tiny):
    dataset = load_dataset("msp_podcast")
    audios = [it.load_audio() for it in list(dataset)[:6]]
    audios.append(np.zeros(31 * 16_000, np.float32))  # over the window: truncated the same way
    ours, frames = tiny.features(audios)
    longest = min(30 * 16_000, max(len(a) for a in audios) + 1_600)
    ref = tiny.processor.feature_extractor(
        [a[:30 * 16_000] for a in audios], sampling_rate=16_000, return_attention_mask=True,
        padding="max_length", max_length=longest, truncation=True, return_tensors="pt")
    assert torch.equal(ours, ref["input_features"])
    assert frames.tolist() == ref["attention_mask"].sum(-1).tolist()
    assert frames.device.type == "cpu"  # read on the host: the encoder's shapes wait on nothing


def test_a_dithering_extractor_is_called_as_it_is(tiny):
    from transformers import WhisperFeatureExtractor

    from harness.models._log_mel import log_mel_batch

    extractor = WhisperFeatureExtractor(feature_size=128, dither=1e-3)
    audios = [np.full(16_000, 0.1, np.float32), np.full(8_000, -0.1, np.float32)]
    torch.manual_seed(0)
    ours, frames = log_mel_batch(extractor, audios, 30 * 16_000)
    undithered, _ = tiny.features(audios)
    assert ours.shape == undithered.shape and frames.tolist() == [100, 50]
    assert not torch.equal(ours, undithered)  # the dither went in: its own path ran


def test_compiled_blocks_compute_the_same_prefill_and_can_be_undone():
    import sys

    tiny = get_model("tiny-qwen2-audio")  # its own weights: compiling patches them
    dataset, reqs = requests_for("crema_d", 4)
    audios, prompts = [r.audio for r in reqs], [r.prompt for r in reqs]
    eager_mlp = tiny.lm.layers[0].mlp
    attention = sys.modules[type(tiny.lm.layers[0].self_attn).__module__]
    eager_rotary = attention.apply_rotary_pos_emb
    with torch.inference_mode():
        reference = tiny.prefill(audios, prompts).logits
        encoded = tiny.encode_audio(*tiny.features(audios))[0]
        fused = tiny.with_options(compile_blocks=True)
        try:
            assert fused.compiled and not tiny.compiled
            assert tiny.lm.layers[0].mlp is not eager_mlp
            assert attention.apply_rotary_pos_emb is not eager_rotary
            assert len(fused._compiled.encoder_layers) == len(tiny.audio_tower.layers)
            compiled = fused.prefill(audios, prompts).logits
            compiled_encoder = fused.encode_audio(*fused.features(audios))[0]
            shorter = fused.prefill(audios[:3], prompts[:3]).logits  # another shape: dynamic
        finally:
            eager = fused.with_options(compile_blocks=False)
    assert tiny.lm.layers[0].mlp is eager_mlp and attention.apply_rotary_pos_emb is eager_rotary
    assert not eager.compiled and not fused.compiled
    torch.testing.assert_close(compiled_encoder, encoded, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(compiled, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shorter, reference[:3], atol=1e-4, rtol=1e-4)


def test_where_compilation_fails_the_eager_modules_stay_with_a_warning(monkeypatch):
    tiny = get_model("tiny-qwen2-audio")  # its own weights: compiling patches them
    eager_mlp = tiny.lm.layers[0].mlp

    def broken_check(self):
        raise RuntimeError("no C compiler")

    monkeypatch.setattr(type(tiny), "_compile_check", broken_check)
    with pytest.warns(UserWarning, match="torch.compile is unavailable here, running eager: "
                                         "RuntimeError: no C compiler"):
        fused = tiny.with_options(compile_blocks=True)
    assert not fused.compiled and tiny.lm.layers[0].mlp is eager_mlp


def test_the_compile_check_runs_in_inference_mode_as_every_model_call(tiny, monkeypatch):
    """Compiled with gradients on, the audio encoder's layers were traced for training and then
    compiled again at the first real call (35 compiled kernels for the tiny benchmark against
    24 in inference mode)."""
    modes = []
    monkeypatch.setattr(type(tiny), "prefill",
                        lambda self, *args, **kwargs: modes.append(torch.is_inference_mode_enabled()))
    assert not torch.is_inference_mode_enabled()
    tiny._compile_check()
    assert modes == [True]


def test_the_template_prefix_is_computed_by_the_eager_modules(tiny, monkeypatch):
    """The prefix, a batch of one run once per backend, compiled every compiled part for that
    size alone (6 recompilations and 24 kernels for the tiny benchmark, 3 and 22 without)."""
    import contextlib

    import harness.models.fast_audio_lm as fast_audio_lm

    stances = []

    @contextlib.contextmanager
    def recorded(torch_):
        stances.append("eager")
        yield

    computed = [(k.clone(), v.clone()) for k, v in tiny._prefix_cache()]
    monkeypatch.setattr(fast_audio_lm, "eager_stance", recorded)
    monkeypatch.setattr(tiny, "_prefix", None)
    again = tiny._prefix_cache()
    assert stances == ["eager"]
    for (k, v), (k2, v2) in zip(computed, again, strict=True):
        torch.testing.assert_close((k2, v2), (k, v), rtol=0, atol=0)


def test_fast_path_options_are_validated_when_the_backend_is_built(tiny):
    from harness.models.fast_path import FastPathOptions

    with pytest.raises(ValueError, match="decode must be one of"):
        tiny.with_options(decode="turbo")
    with pytest.raises(ValueError, match="attention='cudnn' applies to the static decode step"):
        FastPathOptions(decode="eager", attention="cudnn")
    with pytest.raises(ValueError, match=r"unknown fast-path option\(s\) \['cache_mode'\]"):
        get_model("tiny-qwen2-audio", cache_mode="cat")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.options.decode = "static"
    assert tiny.options == FastPathOptions(decode="eager", compile_blocks=False)  # on a CPU


def test_a_prompt_carrying_the_audio_placeholder_fails_alone(tiny):
    dataset, reqs = requests_for("iemocap", 3)
    stray = Request(reqs[1].audio, reqs[1].prompt + " <|AUDIO|>", reqs[1].audio_hash)
    out = tiny.generate([reqs[0], stray, reqs[2]], Decoding(max_new_tokens=8))
    assert out[1].error and "audio placeholder" in out[1].error and not out[1].candidates
    assert out[0].candidates and out[2].candidates and not out[0].error and not out[2].error


def test_an_unscorable_readout_item_is_named_with_its_reason(tiny):
    dataset, reqs = requests_for("iemocap", 3)
    stray = Request(reqs[1].audio, reqs[1].prompt + " <|AUDIO|>", "stray-item")
    rows = tiny.label_logprobs([reqs[0], stray, reqs[2]], dataset.labels)
    scores = np.stack([row.logprobs for row in rows])
    assert np.isnan(scores[1]).all() and np.isfinite(scores[[0, 2]]).all()
    assert "audio placeholder" in rows[1].error and rows[0].error is rows[2].error is None
