"""Ultravox on the fast path, checked on a tiny model of its published layout against one clip
run as its own code runs it (fixtures.ultravox_reference)."""

import json
import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from fixtures import tiny_architectures  # noqa: E402
from fixtures.ultravox_reference import audio_tokens, clip_embeds, clip_rows, plain_generate  # noqa: E402
from harness.models import Decoding, ModelUnavailable, Request, get_model  # noqa: E402
from tests.helpers import requests_for, returns_in_time  # noqa: E402
from tests.models.test_context import assert_long_prompt_refused  # noqa: E402

LABELS = ["Neutral state", "Happiness", "Anger", "Sadness"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_architectures.build_ultravox(tmp_path_factory.mktemp("ultravox"))


@pytest.fixture(scope="module")
def fast(weights):
    return get_model("ultravox-v0.4", path=weights, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def reqs():
    items = requests_for("iemocap", 4)[1]
    odd = Request(items[0].audio[: 16_000 + 210], items[0].prompt, "odd-length")  # 101 frames
    return [*items, odd]  # lengths differ, one an odd number of frames, not a whole one


def _copy(folder, to, left_out=()):
    """The checkpoint folder copied, less the files whose names start with ``left_out``."""
    to.mkdir()
    for f in folder.iterdir():
        if not f.name.startswith(tuple(left_out)):
            (to / f.name).write_bytes(f.read_bytes())
    return to


def test_the_projector_holds_the_published_checkpoints_tensors():
    """The tests' tiny checkpoints are written by this projector, so its own layout is held here
    to the published one (fixie-ai's UltravoxProjector: RMSNorm, linear, SwiGLU halving the
    width, linear, RMSNorm, no biases), at v0.4's sizes: Whisper-medium frames (1024) stacked
    by 8, hidden 4096, Llama 3.1 8B (4096). A bias more would be a parameter no checkpoint holds."""
    from harness.models._ultravox_model import _projector_class

    with torch.device("meta"):
        projector = _projector_class()(1024, 8, 4096, 4096)
    assert {k: tuple(v.shape) for k, v in projector.state_dict().items()} == {
        "ln_pre.weight": (8192,), "linear_1.weight": (4096, 8192),
        "linear_2.weight": (4096, 2048), "ln_post.weight": (4096,)}


def test_the_registry_gives_the_fast_path_without_remote_code(fast):
    assert type(fast).__name__ == "UltravoxBackend"
    assert ("backend", "ultravox/2") in fast.info.options
    assert fast.info.revision.count("+") == 2  # the checkpoint's and its two parts'


def test_each_clips_audio_rows_equal_the_clip_encoded_alone(fast, reqs):
    with torch.inference_mode():
        rows, counts = fast.encode_audio(*fast.features([r.audio for r in reqs]))
        for row, count, request in zip(rows, counts.tolist(), reqs):
            alone = clip_rows(fast, request.audio)
            assert count == audio_tokens(len(request.audio))
            torch.testing.assert_close(row[:count], alone[:count], atol=1e-5, rtol=1e-5)


def test_the_row_counts_are_the_processors_at_every_remainder_of_eight_frames(fast):
    """Clips of 56 to 64 encoder frames (each remainder of the stack of 8): as many audio rows
    as Ultravox's processor gives placeholders."""
    clips = [np.full(320 * frames, 0.01, np.float32) for frames in range(56, 65)]
    with torch.inference_mode():
        _, counts = fast.encode_audio(*fast.features(clips))
    assert counts.tolist() == [audio_tokens(len(c)) for c in clips] == [7] + [8] * 8


def test_prefill_equals_the_clip_run_alone_as_its_code_runs_it(fast, reqs):
    reqs = [*reqs[:-1], Request(reqs[-1].audio, reqs[-1].prompt + " \n\n", "trailing-space")]
    with torch.inference_mode():
        ours = fast.prefill([r.audio for r in reqs], [r.prompt for r in reqs]).logits
        theirs = torch.cat([fast.model.language_model(inputs_embeds=clip_embeds(fast, r)).logits[:, -1]
                            for r in reqs])
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    spread = (theirs - theirs.mean(0)).abs().max()
    assert spread > 100 * 1e-4  # the clips differ by far more than the tolerance: audio is heard


@pytest.mark.parametrize("decoding", [Decoding(max_new_tokens=10),
                                      Decoding(mode="beam", num_candidates=5, max_new_tokens=6)],
                         ids=["greedy", "beam-5"])
def test_answers_equal_plain_generate(fast, reqs, decoding):
    """Greedy tokens equal; beam search's candidates equal, in order, with the same α; on the
    eager and the static decode step alike."""
    with torch.inference_mode():
        theirs = [plain_generate(fast, r, decoding) for r in reqs]
    for decode in ("eager", "static"):
        ours = fast.with_options(decode=decode).generate(reqs, decoding)
        assert [[(c.text, c.n_tokens) for c in g.candidates] for g in ours] == \
            [[(t, n) for t, n, _ in cands] for cands in theirs], decode
        np.testing.assert_allclose([c.logprob for g in ours for c in g.candidates],
                                   [a for cands in theirs for _, _, a in cands], atol=1e-4)


def test_label_scores_end_with_llamas_end_of_turn(fast, reqs):
    scores = fast.label_logprobs(reqs[:2], LABELS)
    eot = fast.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    with torch.inference_mode():
        embeds = clip_embeds(fast, reqs[0])
        label = fast.tokenizer(LABELS[1], add_special_tokens=False)["input_ids"] + [eot]
        full = torch.cat([embeds, fast.model.language_model.get_input_embeddings()(
            torch.tensor([label]))], dim=1)
        logits = fast.model.language_model(inputs_embeds=full).logits[0, -len(label) - 1:-1]
        expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(label)[:, None]).sum()
    assert scores[0].logprobs[1] == pytest.approx(float(expected), abs=1e-4)


def test_a_merged_checkpoint_loads_from_itself(tmp_path, fast, reqs):
    merged = tiny_architectures.build_ultravox(tmp_path, merged=True)
    alone = get_model("ultravox-v0.4", path=merged, device="cpu", dtype="float32")
    decoding = Decoding(max_new_tokens=6)
    assert alone.info.revision.count("+") == 0
    assert [g.candidates for g in alone.generate(reqs[:2], decoding)] == \
        [g.candidates for g in fast.generate(reqs[:2], decoding)]


@pytest.mark.parametrize("version", ["0.3", "0.4"])
def test_the_hf_cache_is_searched_under_the_published_ids(monkeypatch, version):
    asked = []
    monkeypatch.delenv(f"ULTRAVOX_V{version.replace('.', '_')}_PATH", raising=False)
    monkeypatch.setattr("harness.models._hf_common.hf_cache_snapshot",
                        lambda repo: asked.append(repo))
    with pytest.raises(ModelUnavailable):
        get_model(f"ultravox-v{version}")
    assert asked == [f"fixie-ai/ultravox-v{version.replace('.', '_')}"]


@pytest.mark.parametrize("left_out", [("tokenizer", "chat_template", "special_tokens"),
                                      ("chat_template",)], ids=["tokenizer", "template"])
def test_without_its_own_tokenizer_or_template_its_llamas_serves(tmp_path, weights, fast, reqs,
                                                                 left_out):
    bare = _copy(weights, tmp_path / "bare", left_out)
    alone = get_model("ultravox-v0.4", path=bare, device="cpu", dtype="float32")
    decoding = Decoding(max_new_tokens=6)
    assert [g.candidates for g in alone.generate(reqs[:2], decoding)] == \
        [g.candidates for g in fast.generate(reqs[:2], decoding)]


def test_missing_parts_are_refused_by_name(tmp_path, weights, monkeypatch):
    config = json.loads((weights / "config.json").read_text())
    broken = _copy(weights, tmp_path / "broken")
    (broken / "config.json").write_text(json.dumps(dict(config, text_model_id="meta-llama/nowhere")))
    monkeypatch.delenv("ULTRAVOX_TEXT_MODEL_PATH", raising=False)
    with pytest.raises(ModelUnavailable, match="ULTRAVOX_TEXT_MODEL_PATH"):
        get_model("ultravox-v0.4", path=broken, device="cpu")
    (broken / "config.json").write_text(json.dumps(dict(
        config, audio_model_id=None, audio_config=tiny_architectures.WHISPER)))
    with pytest.raises(ModelUnavailable, match="no checkpoint holds .* audio_tower"):
        get_model("ultravox-v0.4", path=broken, device="cpu")


def test_a_verifiers_candidates_share_the_clips_prefill_as_each_alone(fast, reqs):
    flat = [Request(r.audio, f"{r.prompt} Candidate {k}: {answer}", r.item_id)
            for r in reqs[:2] for k, answer in enumerate(["calm", "angry", "sad"])]
    with torch.inference_mode():
        shared = fast.prefill([r.audio for r in flat], [r.prompt for r in flat]).logits
        alone = fast.with_options(share_prompts=False).prefill(
            [r.audio for r in flat], [r.prompt for r in flat]).logits
    torch.testing.assert_close(shared, alone, atol=1e-5, rtol=1e-5)


def test_a_long_clips_windows_are_one_run_of_rows(fast, reqs):
    """Over 30 s with ``long_audio="chunk"``: each window encoded alone, their rows one after
    the other in one placeholder run (windows_as_audios off)."""
    long = np.tile(reqs[0].audio, 40)[: 16_000 * 35]
    chunked = fast.with_options(long_audio="chunk")
    with torch.inference_mode():
        rows, counts, pieces = chunked.encode_clips([long])
    assert pieces == [2]
    assert counts.tolist() == [audio_tokens(30 * 16_000), audio_tokens(5 * 16_000)]
    out = chunked.generate([Request(long, reqs[0].prompt, "long")], Decoding(max_new_tokens=4))
    assert out[0].error is None and out[0].notes  # noted on the item


def test_a_clip_too_short_for_the_spectrogram_fails_alone_and_says_why(fast, reqs):
    short = Request(np.full(150, 0.01, np.float32), reqs[0].prompt, "short")
    out = fast.generate([*reqs[:2], short], Decoding(max_new_tokens=3))
    assert [g.error is None for g in out] == [True, True, False]
    assert "150 samples is too short" in out[2].error
    # Whisper's extractor reflects 200 samples at each end: a clip needs 201 (200 fails in it)
    edge = [Request(np.full(n, 0.01, np.float32), reqs[0].prompt, f"n{n}") for n in (200, 201)]
    at, past = fast.generate(edge, Decoding(max_new_tokens=3))
    assert "200 samples is too short" in at.error and "at least 201" in at.error
    assert past.error is None and past.candidates


def test_a_prompt_past_the_lms_context_is_refused_before_the_batch_runs(fast, reqs):
    assert_long_prompt_refused(fast, reqs)


@pytest.mark.parametrize("part", ["ultravox", "llama", "whisper"])
def test_a_shard_cut_short_fails_the_model_naming_its_file(tmp_path, weights, part):
    """The checkpoint's own shard, or its LM's or encoder's, cut short by a copy: ModelNotLoaded
    naming the file, not safetensors' message, which names none."""
    import shutil

    from harness.models import ModelNotLoaded

    tree = tmp_path / "tree"
    shutil.copytree(weights.parent, tree)
    config = json.loads((tree / "ultravox" / "config.json").read_text())
    config |= {"text_model_id": str(tree / "llama"), "audio_model_id": str(tree / "whisper")}
    (tree / "ultravox" / "config.json").write_text(json.dumps(config))
    shard = tree / part / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:1_000])
    named = "llama" if part == "llama" else f"{part}/model.safetensors"  # the LM: its folder
    with pytest.raises(ModelNotLoaded, match=f"{named} could not be read"):
        get_model("ultravox-v0.4", path=tree / "ultravox", device="cpu")


@pytest.mark.parametrize("config", [None, '{"model_type": "ultra', "[]", "FIFO", "[" * 100_000],
                         ids=["missing", "cut short", "not an object", "a FIFO", "too deep"])
def test_a_config_missing_or_damaged_fails_the_model_naming_its_folder(tmp_path, weights, config):
    """As the other local models: a damaged checkpoint fails its cells (ModelNotLoaded), it is
    not skipped as a model that is not there."""
    from harness.models import ModelNotLoaded

    broken = _copy(weights, tmp_path / "broken")
    if config is None:
        (broken / "config.json").unlink()
    elif config == "FIFO":  # its reader would wait for a writer for ever
        (broken / "config.json").unlink()
        os.mkfifo(broken / "config.json")
    else:
        (broken / "config.json").write_text(config)
    with pytest.raises(ModelNotLoaded, match=f"ultravox: {broken} has no readable config.json"):
        returns_in_time(lambda: get_model("ultravox-v0.4", path=broken, device="cpu"))


@pytest.mark.parametrize(("left_out", "said"), [
    (("chat_template",), "no chat template in {folder} or its LM's folder"),
    (("preprocessor_config",), "no preprocessor_config.json in {folder} and no audio_model_id"),
])
def test_a_merged_checkpoint_without_a_template_or_an_extractor_is_refused(tmp_path, left_out,
                                                                          said):
    """A merged checkpoint names no parts to take them from: what it lacks is said."""
    merged = tiny_architectures.build_ultravox(tmp_path / "built", merged=True)
    bare = _copy(merged, tmp_path / "bare", left_out)
    with pytest.raises(ModelUnavailable, match=re.escape(f"ultravox: {said.format(folder=bare)}")):
        get_model("ultravox-v0.4", path=bare, device="cpu", dtype="float32")


def test_the_checkpoints_own_tokenizer_wins_over_its_lms(tmp_path, weights):
    from harness.models._ultravox_model import UltravoxLayout
    from harness.models.hf_ultravox import ultravox_processor

    own = _copy(weights, tmp_path / "own")
    template = (own / "chat_template.jinja").read_text()
    (own / "chat_template.jinja").write_text("{# the checkpoint's own #}" + template)
    tokenizer = ultravox_processor(UltravoxLayout.read(own)).tokenizer
    assert tokenizer.chat_template.startswith("{# the checkpoint's own #}")
