"""A clip heard with several prompts that start alike (a verifier's candidates) is prefilled
once up to where the prompts part; each answer is what its own prefill gives."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.cache import GenerationCache, cached_generate  # noqa: E402
from harness.models import Decoding, Request  # noqa: E402
from harness.models._shared_prompt import clip_owners, common_length  # noqa: E402
from harness.prompts import verifier_prompt  # noqa: E402
from tests.helpers import requests_for  # noqa: E402

CANDIDATES = ['{"Anger": 0.5, "Sadness": 0.5}', '{"Happiness": 1.0}', "I think it is neutral."]


def verifier_requests(n_items=3):
    dataset, reqs = requests_for("iemocap", n_items)
    by_id = {item.id: item for item in dataset}
    return [Request(r.audio, verifier_prompt("iemocap", by_id[r.item_id].transcript,
                                             dataset.labels, c), r.item_id)
            for r in reqs for c in CANDIDATES]


def test_owners_and_common_starts():
    a, b = np.zeros(3), np.zeros(3)
    assert clip_owners([a, b, a, a, b]) == ([0, 1, 0, 0, 1], [0, 1])
    assert common_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_length([[1, 2, 3], [1, 2, 3]]) == 2  # each keeps a token of its own
    assert common_length([[1, 2, 3], [9, 2, 3]]) == 0  # differing from the first token


def test_a_batch_of_distinct_clips_is_left_to_the_ordinary_prefill(tiny):
    """Nothing is shared where no clip repeats: no prefill runs here (None: the ordinary one
    does), not a prefill of each whole prompt in two parts."""
    from harness.models._shared_prompt import prefill_in_stages

    _, reqs = requests_for("iemocap", 2)
    with torch.inference_mode():
        assert prefill_in_stages(tiny, [r.audio for r in reqs], [r.prompt for r in reqs], 0) is None
        flat = verifier_requests(1)
        audios, prompts = [r.audio for r in flat], [r.prompt for r in flat]
        assert prefill_in_stages(tiny, audios, prompts, 0)


def test_prompts_that_part_before_the_audio_are_left_to_the_ordinary_prefill(tiny, monkeypatch):
    """Were the prompt written before the audio, one clip's requests would part before it:
    nothing is shared (the common start holds no audio)."""
    from harness.models._shared_prompt import prefill_in_stages

    flat = verifier_requests(1)
    monkeypatch.setattr(tiny.chat, "after_prefix", lambda prompts, pieces: [
        f"{p}<|audio_bos|><|AUDIO|><|audio_eos|>" for p in prompts])
    with torch.inference_mode():
        assert prefill_in_stages(tiny, [r.audio for r in flat], [r.prompt for r in flat], 0) is None


@pytest.mark.parametrize("decode", ["eager", "static"])
def test_shared_prefill_answers_as_each_prompt_alone(tiny, decode):
    flat = verifier_requests()
    sharing = tiny.with_options(decode=decode)
    alone = tiny.with_options(decode=decode, share_prompts=False)
    with torch.inference_mode():
        ours = sharing.prefill([r.audio for r in flat], [r.prompt for r in flat]).logits
        theirs = alone.prefill([r.audio for r in flat], [r.prompt for r in flat]).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    for decoding in (Decoding(max_new_tokens=8), Decoding(mode="beam", num_candidates=2,
                                                          max_new_tokens=6)):
        got, want = sharing.generate(flat, decoding), alone.generate(flat, decoding)
        assert [[c.text for c in g.candidates] for g in got] == [
            [c.text for c in g.candidates] for g in want]
        np.testing.assert_allclose([c.logprob for g in got for c in g.candidates],
                                   [c.logprob for g in want for c in g.candidates], atol=1e-4)


def test_the_clip_and_the_common_start_run_once_per_clip(tiny, monkeypatch):
    """Nine requests on three clips: the LM runs three rows of audio, three of the prompts'
    common start, then nine rows of each request's own end; fewer tokens in all than nine
    whole prompts."""
    flat = verifier_requests()
    runs = []
    after = type(tiny).prefill_after
    monkeypatch.setattr(type(tiny), "prefill_after", lambda self, prefix, seen, embeds, *a, **k: (
        runs.append(tuple(embeds.shape[:2])), after(self, prefix, seen, embeds, *a, **k))[1])
    with torch.inference_mode():
        tiny.prefill([r.audio for r in flat], [r.prompt for r in flat])
        sharing, runs[:] = list(runs), []
        tiny.with_options(share_prompts=False).prefill([r.audio for r in flat],
                                                       [r.prompt for r in flat])
    (clips, audio), (clips_again, common), (requests, tail) = sharing
    assert (clips, clips_again, requests) == (3, 3, 9) and runs[0][0] == 9
    assert clips * (audio + common) + requests * tail < 0.7 * runs[0][0] * runs[0][1]


def test_a_prompt_carrying_the_placeholder_after_the_common_start_fails_alone(tiny):
    flat = verifier_requests(1)
    bad = Request(flat[0].audio, flat[0].prompt + " <|AUDIO|>", "bad")
    out = tiny.generate([*flat, bad], Decoding(max_new_tokens=4))
    assert out[-1].error and "audio placeholder" in out[-1].error
    assert all(g.error is None and g.candidates for g in out[:-1])


def test_a_clip_read_lazily_is_read_once_for_all_its_requests(tiny, tmp_path, monkeypatch):
    """Requests the cache reads on a miss (not loaded yet) share one read of their clip."""
    import harness.data.audio as audio_module
    from harness.data import load_dataset
    from harness.prompts import verifier_prompt as prompt_of

    dataset = load_dataset("iemocap")[:2]
    reads = []
    real = audio_module.read_audio
    monkeypatch.setattr(audio_module, "read_audio",
                        lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
    flat = [Request(np.zeros(0, np.float32), prompt_of("iemocap", item.transcript,
                                                       dataset.labels, c), item.id,
                    f"hash-{item.id}", source=item.audio_path)
            for item in dataset for c in CANDIDATES]
    out = cached_generate(tiny, flat, Decoding(max_new_tokens=4),
                          GenerationCache(tmp_path / "c.sqlite"))
    assert sorted(reads) == sorted(item.audio_path for item in dataset)
    assert all(g.error is None for g in out)


def test_a_long_clip_heard_in_pieces_is_shared_too(tiny):
    """``long_audio="chunk"``: the clip's two audios are in the common start of its prompts."""
    flat = verifier_requests(1)
    long = np.tile(flat[0].audio, 40)[: 16_000 * 35]
    asks = [Request(long, r.prompt, r.item_id) for r in flat]
    chunking = tiny.with_options(long_audio="chunk")
    with torch.inference_mode():
        ours = chunking.prefill([r.audio for r in asks], [r.prompt for r in asks]).logits
        theirs = chunking.with_options(share_prompts=False).prefill(
            [r.audio for r in asks], [r.prompt for r in asks]).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_label_scores_of_requests_sharing_a_clip_equal_each_alone(tiny):
    flat = verifier_requests(2)
    labels = ["Neutral state", "Happiness", "Anger", "Sadness"]
    ours = np.stack([r.logprobs for r in tiny.label_logprobs(flat, labels)])
    theirs = np.stack([r.logprobs for r in tiny.with_options(share_prompts=False).label_logprobs(
        flat, labels)])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
