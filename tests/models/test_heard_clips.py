"""A clip heard with one prompt is not encoded and prefilled again for the next: each answer
equals the one a backend that keeps nothing gives."""

import numpy as np
import pytest

from harness.models._heard_clips import Heard, HeardClips


class _Part:
    """Stands for a 16-bit tensor of ``n`` bytes (what the store counts)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.shape = (n // 2, 1, 1)

    def numel(self) -> int:
        return self.n // 2

    def element_size(self) -> int:
        return 2


def _heard(nbytes: int) -> Heard:
    """Keys of ``nbytes`` * 3 / 4 and values of the rest: the store counts both."""
    return Heard((1, 2), 1, (3,), ((_Part(nbytes * 3 // 4), _Part(nbytes // 4)),))


def test_what_a_clip_takes_is_its_keys_and_values_bytes():
    assert _heard(40).nbytes == 40 and _heard(40).length == 15


def test_the_store_keeps_what_fits_its_budget_and_counts_hits():
    store = HeardClips(budget=100)
    store.keep(["a", "b", "c"], [_heard(40), _heard(40), _heard(40)], found_none=False)
    assert len(store) == 2 and store.held == 80  # c did not fit
    found = store.find(["a", "c", "b"])
    assert [f is not None for f in found] == [True, False, True]
    assert (store.hits, store.misses) == (2, 1)
    store.keep(["a"], [_heard(40)], found_none=False)  # kept already: not counted twice
    assert store.held == 80


def test_a_batch_that_finds_nothing_and_does_not_fit_starts_the_store_over():
    """The next chunk of a run: what is kept is of clips gone by."""
    store = HeardClips(budget=100)
    store.keep(["a", "b"], [_heard(40), _heard(40)], found_none=True)
    store.keep(["c"], [_heard(40)], found_none=False)  # some of its batch was found: kept on
    assert len(store) == 2 and "c" not in store._kept
    store.keep(["c", "d"], [_heard(40), _heard(40)], found_none=True)
    assert sorted(store._kept) == ["c", "d"] and store.held == 80
    store.keep(["e"], [_heard(400)], found_none=True)  # larger than the budget: nothing kept
    assert len(store) == 0 and store.held == 0


def test_one_store_in_a_process_holds_clips_at_a_time():
    """A worker keeps every model it loaded: the model that keeps clips last lets go of what
    another kept, so that their stores never take a budget each."""
    first, second = HeardClips(budget=100), HeardClips(budget=100)
    first.keep(["a"], [_heard(40)], found_none=True)
    second.keep(["b"], [_heard(40)], found_none=True)
    assert len(first) == 0 and first.held == 0 and len(second) == 1
    second.keep(["c"], [_heard(40)], found_none=False)
    assert len(second) == 2


torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models import Decoding, Request  # noqa: E402
from harness.prompts import cot_prompt, readout_prompt, verifier_prompt  # noqa: E402
from tests.helpers import requests_for  # noqa: E402

LABELS = ("Neutral state", "Happiness", "Anger", "Sadness")


def _texts(generations):
    return [(g.error, [c.text for c in g.candidates]) for g in generations]


def _logprobs(generations):
    return [c.logprob for g in generations for c in g.candidates]


def _prompted(dataset, reqs, prompt):
    by_id = {item.id: item for item in dataset}
    return [Request(r.audio, prompt("iemocap", by_id[r.item_id].transcript, dataset.labels),
                    r.item_id) for r in reqs]


@pytest.fixture
def backends(tiny):
    """A backend that keeps what it heard, and one that keeps nothing, on the same weights."""
    return tiny.with_options(heard_clips_mib=64), tiny.with_options(heard_clips_mib=0)


@pytest.fixture
def encoded(monkeypatch, tiny):
    """The clips each call of ``encode_clips`` encoded."""
    counts: list[int] = []
    encode = type(tiny).encode_clips

    def counting(self, audios):
        counts.append(len(audios))
        return encode(self, audios)

    monkeypatch.setattr(type(tiny), "encode_clips", counting)
    return counts


def test_a_clip_asked_again_with_another_prompt_is_not_encoded_again(backends, encoded):
    keeping, keeping_nothing = backends
    dataset, reqs = requests_for("iemocap", 10)
    greedy = Decoding(max_new_tokens=6)
    first = keeping.generate(reqs, greedy)
    assert sum(encoded) == 10 and len(keeping.heard) == 10
    encoded.clear()
    cot = _prompted(dataset, reqs[3:9], cot_prompt)  # other batches than the clips were heard in
    ours = keeping.generate(cot, greedy)
    assert encoded == [] and keeping.heard.hits == 6
    theirs = keeping_nothing.generate(cot, greedy)
    assert sum(encoded) == 6
    assert _texts(ours) == _texts(theirs)
    np.testing.assert_allclose(_logprobs(ours), _logprobs(theirs), rtol=0, atol=1e-5)
    assert _texts(first) == _texts(keeping_nothing.generate(reqs, greedy))


def test_label_scores_and_beams_after_a_clip_was_heard_equal_a_fresh_prefill(backends, encoded):
    keeping, keeping_nothing = backends
    dataset, reqs = requests_for("iemocap", 4)
    keeping.generate(reqs, Decoding(max_new_tokens=2))
    encoded.clear()
    readout = _prompted(dataset, reqs, readout_prompt)
    ours = np.stack([r.logprobs for r in keeping.label_logprobs(readout, LABELS)])
    beams = Decoding(mode="beam", num_candidates=3, max_new_tokens=5)
    our_beams = keeping.generate(reqs, beams)
    assert encoded == []
    theirs = np.stack([r.logprobs for r in keeping_nothing.label_logprobs(readout, LABELS)])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    assert _texts(our_beams) == _texts(keeping_nothing.generate(reqs, beams))


@pytest.mark.parametrize("decode", ["eager", "static"])
def test_a_verifier_s_candidates_start_from_the_clip_heard_and_share_their_common_start(
        backends, encoded, monkeypatch, decode):
    keeping, keeping_nothing = (b.with_options(batch_size=9, decode=decode) for b in backends)
    dataset, reqs = requests_for("iemocap", 3)
    keeping.generate(reqs, Decoding(max_new_tokens=2))
    encoded.clear()
    by_id = {item.id: item for item in dataset}
    asks = [Request(r.audio, verifier_prompt("iemocap", by_id[r.item_id].transcript,
                                             dataset.labels, c), r.item_id)
            for r in reqs for c in ('{"Anger": 1.0}', '{"Happiness": 0.5, "Anger": 0.5}', "no")]
    rows = []
    after = type(keeping).prefill_after
    monkeypatch.setattr(type(keeping), "prefill_after", lambda self, prefix, seen, embeds, *a,
                        **k: (rows.append(embeds.shape[0]), after(self, prefix, seen, embeds,
                                                                  *a, **k))[1])
    ours = keeping.generate(asks, Decoding(max_new_tokens=4))
    assert encoded == [] and rows == [3, 9]  # each clip's common start, then each request's end
    theirs = keeping_nothing.with_options(share_prompts=False).generate(
        asks, Decoding(max_new_tokens=4))
    assert _texts(ours) == _texts(theirs)
    np.testing.assert_allclose(_logprobs(ours), _logprobs(theirs), rtol=0, atol=1e-5)


def test_a_prompt_that_changes_the_text_before_the_audio_is_prefilled_whole(
        backends, encoded, monkeypatch):
    """What was kept of a clip stands for its chat text through the audio: a chat text that
    differs there (here: the prompt written first) is not given it."""
    keeping, keeping_nothing = backends
    _, reqs = requests_for("iemocap", 2)
    keeping.generate(reqs, Decoding(max_new_tokens=2))
    encoded.clear()
    real = keeping.chat.after_prefix
    monkeypatch.setattr(keeping.chat, "after_prefix", lambda prompts, pieces: [
        "Say: " + text for text in real(prompts, pieces)])
    monkeypatch.setattr(keeping_nothing.chat, "after_prefix", keeping.chat.after_prefix)
    ours = keeping.generate(reqs, Decoding(max_new_tokens=4))
    assert sum(encoded) == 2  # encoded again: the ordinary prefill ran
    assert _texts(ours) == _texts(keeping_nothing.generate(reqs, Decoding(max_new_tokens=4)))


def test_a_long_clip_heard_in_pieces_is_kept_whole(backends, encoded):
    keeping, keeping_nothing = (b.with_options(long_audio="chunk") for b in backends)
    dataset, reqs = requests_for("iemocap", 1)
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long")
    keeping.generate([long], Decoding(max_new_tokens=2))
    encoded.clear()
    cot = [Request(long.audio, _prompted(dataset, reqs, cot_prompt)[0].prompt, "long")]
    ours = keeping.generate(cot, Decoding(max_new_tokens=4))
    assert encoded == [] and keeping.heard.hits == 1
    theirs = keeping_nothing.generate(cot, Decoding(max_new_tokens=4))
    assert _texts(ours) == _texts(theirs)
    np.testing.assert_allclose(_logprobs(ours), _logprobs(theirs), rtol=0, atol=1e-5)


def test_the_next_chunk_s_clips_take_the_place_of_the_last_one_s(tiny, encoded):
    """A store with room for two clips: a batch of two others, none of them found and no room
    for them, starts it over with them."""
    keeping = tiny.with_options(heard_clips_mib=64, batch_size=2)
    _, reqs = requests_for("iemocap", 4)
    keeping.generate(reqs[:2], Decoding(max_new_tokens=2))
    keeping.heard.budget = keeping.heard.held  # room for these two and no more
    keeping.generate(reqs[2:], Decoding(max_new_tokens=2))
    assert len(keeping.heard) == 2 and sum(encoded) == 4
    encoded.clear()
    keeping.generate(reqs[2:], Decoding(max_new_tokens=2))
    assert encoded == []  # the later two are the ones kept


@pytest.mark.parametrize("name", ["audio-flamingo-3", "qwen2.5-omni-7b", "ultravox-v0.4"])
def test_every_fast_path_architecture_answers_from_a_clip_heard_as_afresh(
        other_architectures, name):
    """Each family's chat text, encoder and positions (Omni's own encoder, Ultravox's audio in
    the user's text): chain of thought, a verifier's candidates and readout after the base
    prompt equal a backend that keeps nothing."""
    from harness.models import get_model

    keeping = get_model(name, path=other_architectures[name], device="cpu", dtype="float32",
                        heard_clips_mib=64, batch_size=4)
    keeping_nothing = keeping.with_options(heard_clips_mib=0)
    dataset, reqs = requests_for("iemocap", 5)
    keeping.generate(reqs, Decoding(max_new_tokens=2))
    by_id = {item.id: item for item in dataset}
    asks = _prompted(dataset, reqs[1:4], cot_prompt) + [
        Request(r.audio, verifier_prompt("iemocap", by_id[r.item_id].transcript, dataset.labels,
                                         c), r.item_id) for r in reqs for c in ("no", '{"a": 1}')]
    ours = keeping.generate(asks, Decoding(max_new_tokens=5))
    theirs = keeping_nothing.generate(asks, Decoding(max_new_tokens=5))
    assert _texts(ours) == _texts(theirs)
    np.testing.assert_allclose(_logprobs(ours), _logprobs(theirs), rtol=0, atol=1e-5)
    readout = _prompted(dataset, reqs, readout_prompt)
    np.testing.assert_allclose(
        np.stack([r.logprobs for r in keeping.label_logprobs(readout, LABELS)]),
        np.stack([r.logprobs for r in keeping_nothing.label_logprobs(readout, LABELS)]),
        rtol=0, atol=1e-5)
    assert keeping.heard.misses == 5 and keeping.heard.hits > 5


def test_a_clip_of_another_length_under_the_same_hash_is_heard_afresh(backends, encoded):
    """The store trusts a request's content hash as the generation cache does, and checks the
    samples' count besides: a hash given wrongly for a clip of another length does not hand it
    another clip's audio."""
    keeping, _ = backends
    _, reqs = requests_for("iemocap", 2)
    keeping.generate(reqs[:1], Decoding(max_new_tokens=2))
    impostor = Request(reqs[1].audio, reqs[1].prompt, "other", reqs[0].audio_hash)
    assert len(impostor.audio) != len(reqs[0].audio)
    encoded.clear()
    out = keeping.generate([impostor], Decoding(max_new_tokens=4))
    assert sum(encoded) == 1 and out[0].error is None
