"""The Audio Flamingo 2 adapter against a stand-in of NVIDIA's package (tests/models/fake_af2):
windows, prompt, weights, candidates and scores, and what fails how. Batches and what NVIDIA's
code demands of the adapter: test_af2_batches.py."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models import Decoding, ModelNotLoaded, ModelUnavailable, Request, get_model  # noqa: E402
from harness.models.af2_native import clap_windows  # noqa: E402
from tests.helpers import returns_in_time  # noqa: E402
from tests.models.af2_stand_in import FAKE, forget_nvidias_modules  # noqa: E402

NVIDIA_CLAP = {"window_length": 10.0, "window_overlap": 0.0, "max_num_window": 12}


def test_windows_follow_nvidias_loader():
    rng = np.random.default_rng(0)
    clip = (0.3 * rng.standard_normal(16_000 * 25)).astype(np.float32)
    windows, mask = clap_windows(clip, NVIDIA_CLAP)
    assert windows.shape == (3, 160_000) and mask.tolist() == [1, 1, 1]  # 25 s: three 10 s windows
    peak_normalised = clip / np.abs(clip).max()
    np.testing.assert_allclose(windows.reshape(-1)[: len(clip)], peak_normalised, atol=1 / 32767)
    assert not windows.reshape(-1)[len(clip):].any()  # zero padding to whole windows
    assert clap_windows(np.zeros(8_000), NVIDIA_CLAP)[0].shape == (1, 160_000)  # silence: no NaN
    assert not np.isnan(clap_windows(np.zeros(8_000), NVIDIA_CLAP)[0]).any()
    assert clap_windows(np.ones(16_000 * 200), NVIDIA_CLAP)[0].shape == (12, 160_000)  # capped at 2 min


def _nvidias_windows(clip, config, rate=16_000):
    """NVIDIA's ``read_audio`` (cut to the windows' duration, peak-normalised) and
    ``get_num_windows``/``load_audio`` as they write them, for a clip with negative samples."""
    length, overlap = int(config["window_length"] * rate), int(config["window_overlap"] * rate)
    most = int(config["max_num_window"])
    duration = most * (config["window_length"] - config["window_overlap"]) + config["window_overlap"]
    data = np.asarray(clip, np.float64)[: int(duration * rate)]
    data = data / max(abs(data.max()), abs(data.min()))
    t = len(data)
    if t <= length:
        count, full = 1, length
    elif t >= most * length - (most - 1) * overlap:
        count, full = most, most * length - (most - 1) * overlap
    else:
        count = 1 + int(np.ceil((t - length) / float(length - overlap)))
        full = count * length - (count - 1) * overlap
    data = np.append(data, np.zeros(max(full - t, 0)))
    quantised = ((np.clip(data, -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0).astype(np.float32)
    start = [i * (length - overlap) for i in range(count)]
    return np.stack([quantised[s:s + length] for s in start])


@pytest.mark.parametrize("seconds", [0.5, 1.0, 1.3, 2.2, 2.5, 4.0])
def test_overlapping_windows_of_a_quiet_clip_follow_nvidias_loader(seconds):
    """Windows of 1 s overlapping by 0.25 s, at most 3 (2.5 s): one window, a padded last one,
    exactly full, cut; a clip at 5% of full scale is raised to its peak first."""
    config = {"window_length": 1.0, "window_overlap": 0.25, "max_num_window": 3}
    clip = 0.05 * np.sin(np.arange(int(16_000 * seconds)) * 0.01 + 0.3)
    windows, mask = clap_windows(clip.astype(np.float32), config)
    expected = _nvidias_windows(clip.astype(np.float32), config)
    assert windows.shape == expected.shape and mask.tolist() == [1.0] * len(expected)
    np.testing.assert_allclose(windows, expected, atol=1.5 / 32767)
    assert np.abs(windows).max() > 0.99


def test_loads_nvidias_checkpoint_layout_and_weights(af2, af2_checkpoint, af2_requests):
    from safetensors.torch import load_file

    saved = load_file(str(af2_checkpoint / "safe_ckpt" / "chunk_0.safetensors"))["audio_proj.weight"]
    assert torch.equal(af2.model.audio_proj.weight, saved)
    assert af2.info.name == "audio-flamingo-2" and af2.info.dtype == "float32"
    assert af2.info.revision.startswith("sha256:")
    assert af2.info.capabilities.structured_output is False  # no constrained decoding
    assert af2.factory.CREATED[-1] == {
        "use_local_files": True, "freeze_lm_embeddings": True, "gradient_checkpointing": False}
    with pytest.raises(ValueError, match="audio-flamingo-2 has no constrained decoding"):
        af2.generate(af2_requests[:1], Decoding(constrained=True, json_labels=("Anger", "Sadness")))


def test_prompt_audio_and_beams_reach_the_flamingo_generate(af2, af2_requests):
    af2.factory.CALLS.clear()
    [out] = af2.generate(af2_requests[:1], Decoding(mode="beam", num_candidates=3, max_new_tokens=8))
    [call] = af2.factory.CALLS
    text = af2.tokenizer.decode(call["lang_x"][0])
    assert text == f"<audio>{af2_requests[0].prompt.lower().strip()}<SEP>"
    windows, _ = clap_windows(af2_requests[0].audio, af2.clap_config)
    assert torch.equal(call["audio_x"][0], torch.from_numpy(windows))
    assert call["num_beams"] == 3 and call["length_penalty"] == 0.0
    assert len(out.candidates) == 3
    assert [c.logprob for c in out.candidates] == sorted((c.logprob for c in out.candidates),
                                                         reverse=True)
    assert all(np.isfinite(c.logprob) and c.finite for c in out.candidates)


def test_greedy_logprob_is_the_sum_of_the_chosen_tokens(af2, af2_requests):
    from harness.models.af2_native import _generate_kwargs

    decoding = Decoding(max_new_tokens=6, min_new_tokens=6)
    [out] = af2.generate(af2_requests[1:2], decoding)
    [cand] = out.candidates
    audio, mask, ids, _ = af2._inputs([af2_requests[1]])
    with torch.inference_mode():
        tokens = af2.model.generate(audio_x=audio, audio_x_mask=mask, lang_x=ids,
                                    **_generate_kwargs(decoding)).sequences[:, ids.shape[1]:]
        logits = af2.model(audio_x=audio, audio_x_mask=mask, lang_x=torch.cat([ids, tokens], 1)).logits
    logp = torch.log_softmax(logits[:, ids.shape[1] - 1:-1].double(), -1)
    assert cand.n_tokens == tokens.shape[1] == 6
    assert cand.logprob == pytest.approx(float(logp.gather(2, tokens[..., None]).sum()), abs=1e-4)


def test_samples_are_seeded_and_labels_scored(af2, af2_requests):
    decoding = Decoding(mode="sample", num_candidates=3, max_new_tokens=6, seed=7)
    a, b = af2.generate(af2_requests[:1], decoding), af2.generate(af2_requests[:1], decoding)
    assert [c.text for c in a[0].candidates] == [c.text for c in b[0].candidates]
    assert len(a[0].candidates) == 3
    rows = af2.label_logprobs(af2_requests, ["Anger", "Sadness", "Neutral state"])
    scores = np.stack([row.logprobs for row in rows])
    assert scores.shape == (3, 3) and np.isfinite(scores).all() and (scores < 0).all()
    assert not np.allclose(scores[0], scores[1])  # the audio conditions the scores


def test_a_failing_clip_is_an_item_error(af2, af2_requests, monkeypatch):
    original = af2.model.generate

    def flaky(**kwargs):
        if (kwargs["audio_x"].flatten(1).abs().sum(1) == 0).any():  # a silent clip in the batch
            raise RuntimeError("CLAP encoder failed")
        return original(**kwargs)

    monkeypatch.setattr(af2.model, "generate", flaky)
    silent = Request(np.zeros(16_000, np.float32), af2_requests[0].prompt, "silent")
    out = af2.generate([af2_requests[0], silent, af2_requests[1]], Decoding(max_new_tokens=4))
    assert out[0].candidates and out[2].candidates
    assert out[1].error == "RuntimeError: CLAP encoder failed"


def test_missing_config_and_weights_say_what_to_set(af2_checkpoint, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delenv("AUDIO_FLAMINGO_2_PATH", raising=False)
    monkeypatch.setattr("harness.models._hf_common.hf_cache_snapshot", lambda repo: None)
    with pytest.raises(ModelUnavailable, match="AUDIO_FLAMINGO_2_PATH"):
        get_model("audio-flamingo-2")
    with pytest.raises(ModelUnavailable, match="AUDIO_FLAMINGO_2_CONFIG"):
        get_model("audio-flamingo-2", path=tmp_path)


def test_a_prompt_past_the_lms_context_is_its_items_error(af2, af2_requests):
    long = Request(af2_requests[0].audio, af2_requests[0].prompt + "I said " * 20_000, "long-prompt")
    out = af2.generate([long, af2_requests[1]], Decoding(max_new_tokens=4))
    rows = af2.label_logprobs([long], ["Anger", "Sadness"])
    assert out[0].error.startswith("ValueError: prompt of ")
    assert out[0].error.endswith("is longer than the model's context of 32,768 tokens")
    assert out[1].error is None and out[1].candidates
    assert rows[0].error.endswith("the model's context of 32,768 tokens")
    assert np.isnan(rows[0].logprobs).all()


@pytest.mark.parametrize("damage", ["no metadata", "metadata not JSON", "metadata no list",
                                    "metadata too deep", "a chunk missing", "a chunk cut short",
                                    "metadata a FIFO", "a chunk a FIFO"])
def test_a_damaged_checkpoint_is_refused_naming_the_file(af2_checkpoint, tmp_path, monkeypatch, damage):
    """No metadata: not NVIDIA's folder (unavailable, the cells skip); damaged metadata or
    chunks: the model is there but cannot load (its cells fail, naming the file); a FIFO where
    a file was is named by its kind, not waited on."""
    import shutil

    monkeypatch.syspath_prepend(str(FAKE))
    root = tmp_path / "af2"
    shutil.copytree(af2_checkpoint, root)
    safe = root / "safe_ckpt"
    if damage == "no metadata":
        (safe / "metadata.json").unlink()
    elif damage == "metadata not JSON":
        (safe / "metadata.json").write_text('["chunk_0"')
    elif damage == "metadata no list":
        (safe / "metadata.json").write_text('{"chunk_0": 1}')
    elif damage == "metadata too deep":  # a RecursionError escaped the handler
        (safe / "metadata.json").write_text("[" * 100_000)
    elif damage == "a chunk missing":
        (safe / "metadata.json").write_text(json.dumps(["chunk_0", "chunk_1"]))
    elif damage.endswith("a FIFO"):
        fifo = safe / ("metadata.json" if "metadata" in damage else "chunk_0.safetensors")
        fifo.unlink()
        os.mkfifo(fifo)
    else:
        data = (safe / "chunk_0.safetensors").read_bytes()
        (safe / "chunk_0.safetensors").write_bytes(data[: len(data) // 2])
    try:
        expected = ModelUnavailable if damage == "no metadata" else ModelNotLoaded
        with pytest.raises(expected) as error:
            returns_in_time(lambda: get_model("audio-flamingo-2", path=root, device="cpu"))
    finally:
        forget_nvidias_modules()
    named = "metadata.json" if "metadata" in damage else ("chunk_1" if "missing" in damage
                                                          else "chunk_0")
    assert named in str(error.value)
    if damage.endswith("a FIFO"):
        assert "is a FIFO, not a regular file" in str(error.value)


@pytest.mark.parametrize("text", ["clap_config: [unclosed\n", "model_config: {}\n", "- a list\n",
                                  "clap_config: {method: x}\nmodel_config: {}\n",
                                  "[" * 100_000])  # too deep for YAML's reader: a RecursionError
def test_an_inference_config_it_cannot_use_is_refused_naming_it(af2_checkpoint, tmp_path, monkeypatch,
                                                                text):
    monkeypatch.syspath_prepend(str(FAKE))
    config = tmp_path / "inference.yaml"
    config.write_text(text)
    try:
        with pytest.raises(ModelNotLoaded, match="inference config .*inference.yaml cannot be used"):
            get_model("audio-flamingo-2", path=af2_checkpoint, config=config, device="cpu")
    finally:
        forget_nvidias_modules()


def test_an_answer_ends_at_its_end_of_chunk_mark_which_it_does_not_keep(af2, af2_requests):
    """From the third step on the mark is all but certain: the answer is the two tokens before
    it, α their log-probabilities and the mark's (all but 0), and no mark in the text."""
    mark = af2.tokenizer.convert_tokens_to_ids("<|endofchunk|>")
    head, steps = af2.model.lang_encoder.lm_head, []

    def push_the_mark(module, args, out):
        steps.append(out.shape[1])
        if len(steps) > 2:
            out = out.clone()
            out[..., mark] += 100.0
        return out

    handle = head.register_forward_hook(push_the_mark)
    try:
        [out] = af2.generate(af2_requests[:1], Decoding(max_new_tokens=6))
    finally:
        handle.remove()
    [cand] = out.candidates
    [free] = af2.generate(af2_requests[:1], Decoding(max_new_tokens=2))
    assert cand.n_tokens == 3 and "<|endofchunk|>" not in cand.text
    assert cand.text == free.candidates[0].text  # the two tokens before the mark
    assert cand.logprob == pytest.approx(free.candidates[0].logprob, abs=1e-3)  # the mark: ~0


def test_a_labels_score_is_its_tokens_and_the_mark_read_one_position_at_a_time(af2, af2_requests):
    [row] = af2.label_logprobs(af2_requests[:1], ["Anger", "Neutral state"])
    audio, mask, ids, _ = af2._inputs(af2_requests[:1])
    for label, score in zip(["Anger", "Neutral state"], row.logprobs):
        target = af2.tokenizer(label + "<|endofchunk|>", add_special_tokens=False)["input_ids"]
        total = 0.0
        for k, token in enumerate(target):
            prefix = torch.cat([ids, torch.tensor([target[:k]], dtype=ids.dtype)], 1)
            with torch.inference_mode():
                logits = af2.model(audio_x=audio, audio_x_mask=mask, lang_x=prefix).logits[0, -1]
            total += float(torch.log_softmax(logits.double(), -1)[token])
        assert score == pytest.approx(total, abs=1e-4)


def test_checkpoint_tensors_matching_no_parameter_are_warned_of(af2_checkpoint, tmp_path, monkeypatch):
    import shutil

    from safetensors.torch import load_file, save_file

    monkeypatch.syspath_prepend(str(FAKE))
    root = tmp_path / "af2"
    shutil.copytree(af2_checkpoint, root)
    chunk = root / "safe_ckpt" / "chunk_0.safetensors"
    save_file({**load_file(str(chunk)), "gated_xattn.0.alpha": torch.zeros(1)}, str(chunk))
    try:
        with pytest.warns(UserWarning, match=r"audio-flamingo-2: 1 checkpoint tensors match no "
                                             r"parameter \(first: gated_xattn.0.alpha\)"):
            model = get_model("audio-flamingo-2", path=root, device="cpu")
    finally:
        forget_nvidias_modules()
    assert torch.equal(model.model.audio_proj.weight, load_file(str(chunk))["audio_proj.weight"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine whose torch sees no GPU")
def test_no_device_named_is_picked_and_the_dtype_asked_for_is_kept(af2_checkpoint, monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.setenv("HARNESS_GPUS", "0")
    try:
        with pytest.warns(UserWarning, match="audio-flamingo-2 runs on the CPU: GPUs are listed"):
            model = get_model("audio-flamingo-2", path=af2_checkpoint, dtype="bfloat16")
    finally:
        forget_nvidias_modules()
    assert model.info.device == "cpu" and model.info.dtype == "bfloat16"
    assert model.model.audio_proj.weight.dtype == torch.bfloat16
