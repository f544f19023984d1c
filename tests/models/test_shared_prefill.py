"""``generate_many``: one prefill per clip for several decodings, each answer as ``generate``'s."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models import Decoding, Request  # noqa: E402
from harness.models._kv_layers import fork_cache  # noqa: E402
from tests.helpers import requests_for  # noqa: E402

LABELS = ("Neutral state", "Happiness", "Anger", "Sadness")
DECODINGS = [Decoding(max_new_tokens=8),
             Decoding(mode="beam", num_candidates=5, max_new_tokens=8),
             Decoding(mode="beam", num_candidates=3, max_new_tokens=6),
             Decoding(mode="sample", num_candidates=3, max_new_tokens=8, temperature=1.0, seed=7),
             Decoding(mode="beam", num_candidates=2, max_new_tokens=12, json_labels=LABELS,
                      constrained=True)]


def _rows(generations):
    return [(g.error, g.notes, [(c.text, c.n_tokens, c.finite) for c in g.candidates])
            for g in generations]


@pytest.mark.parametrize("together", [False, True])
@pytest.mark.parametrize("decode", ["eager", "static"])
def test_each_decoding_answers_as_generate_alone(tiny, decode, together):
    """Ten clips (two batches on the CPU), five decodings from one prefill per batch, one after
    the other or (``decode_together``) in one loop: the same candidates, in the same order, as
    five separate calls; samples drawn from the same seeds."""
    backend = tiny.with_options(decode=decode, decode_together=together)
    _, reqs = requests_for("iemocap", 10)
    together = backend.generate_many(reqs, DECODINGS)
    assert len(together) == len(DECODINGS)
    for decoding, answers in zip(DECODINGS, together):
        alone = backend.generate(reqs, decoding)
        assert _rows(answers) == _rows(alone), decoding
        np.testing.assert_allclose([c.logprob for g in answers for c in g.candidates],
                                   [c.logprob for g in alone for c in g.candidates],
                                   rtol=0, atol=1e-5)
        assert all(len(g.candidates) == decoding.num_candidates for g in answers)


def test_no_decodings_or_no_requests_ask_nothing(tiny):
    _, reqs = requests_for("iemocap", 2)
    assert tiny.generate_many(reqs, []) == []
    assert tiny.generate_many([], DECODINGS[:2]) == [[], []]


def test_prefill_runs_once_per_batch_for_all_decodings(tiny, monkeypatch):
    _, reqs = requests_for("crema_d", 10)
    calls = []
    prefill = type(tiny).prefill

    def counting(self, audios, prompts, reserve=0, keys=None):
        calls.append(len(audios))
        return prefill(self, audios, prompts, reserve, keys)

    monkeypatch.setattr(type(tiny), "prefill", counting)
    tiny.generate_many(reqs, DECODINGS[:3])
    assert calls == [8, 2]


@pytest.mark.parametrize("name", ["audio-flamingo-3", "qwen2.5-omni-7b", "ultravox-v0.4"])
def test_every_fast_path_architecture_decodes_together_as_one_after_the_other(
        other_architectures, name):
    from harness.models import get_model

    one_by_one = get_model(name, path=other_architectures[name], device="cpu", dtype="float32",
                           decode="static", batch_size=4)
    together = one_by_one.with_options(decode_together=True)
    _, reqs = requests_for("iemocap", 5)
    for ours, theirs in zip(together.generate_many(reqs, DECODINGS),
                            one_by_one.generate_many(reqs, DECODINGS)):
        assert _rows(ours) == _rows(theirs)
        np.testing.assert_allclose([c.logprob for g in ours for c in g.candidates],
                                   [c.logprob for g in theirs for c in g.candidates],
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize("decode", ["eager", "static"])
def test_decoding_together_runs_the_model_once_a_step_for_all_decodings(tiny, monkeypatch,
                                                                         decode):
    """Greedy, beam 5 and beam 3 of two clips: one after the other, the LM runs a step per new
    token of each decoding; together, a step per new token of the longest, on all 2 x 9
    sequences at once."""
    _, reqs = requests_for("crema_d", 2)
    shapes = []
    static = decode == "static"
    owner = type(tiny.static_step(False)) if static else type(tiny)
    step = owner.__call__ if static else owner.step

    def counting(self, tokens, *args):
        shapes.append(tokens.shape[0])
        return step(self, tokens, *args)

    monkeypatch.setattr(owner, "__call__" if static else "step", counting)
    decodings = DECODINGS[:3]
    for together in (False, True):
        shapes.clear()
        tiny.with_options(decode=decode, decode_together=together).generate_many(reqs, decodings)
        if together:
            assert set(shapes) == {2 * 9} and len(shapes) <= 7  # 8 tokens at most: 7 steps
        else:
            assert set(shapes) == {2, 10, 6} and len(shapes) > 7


def test_decoding_together_sizes_the_batch_for_every_decodings_sequences(tiny, monkeypatch):
    _, reqs = requests_for("crema_d", 2)
    asked = []
    size = type(tiny).batch_size_for

    def spy(self, requests, sequences_per_clip, new_tokens):
        asked.append((sequences_per_clip, new_tokens))
        return size(self, requests, sequences_per_clip, new_tokens)

    monkeypatch.setattr(type(tiny), "batch_size_for", spy)
    tiny.generate_many(reqs, DECODINGS[:3])
    tiny.with_options(decode_together=True).generate_many(reqs, DECODINGS[:3])
    tiny.with_options(decode_together=True).generate_many(reqs, DECODINGS[:1])
    assert asked == [(5, 8), (9, 8), (1, 8)]  # the widest alone; all of them; one is alone


def test_a_long_clip_carries_its_note_in_every_decoding(tiny):
    _, reqs = requests_for("iemocap", 2)
    long = Request(np.tile(reqs[0].audio, 40)[: 16_000 * 35], reqs[0].prompt, "long-clip")
    out = tiny.generate_many([long, reqs[1]], DECODINGS[:2])
    note = ("long-clip: 35.0 s clip truncated to the model's 30 s audio window",)
    assert [answers[0].notes for answers in out] == [note, note]
    assert [answers[1].notes for answers in out] == [(), ()]
    refusing = tiny.with_options(long_audio="error").generate_many([long, reqs[1]], DECODINGS[:2])
    assert all(a[0].error and "longer than" in a[0].error and a[1].candidates for a in refusing)


def test_a_fork_shares_the_prompt_and_writes_only_past_it(tiny):
    _, reqs = requests_for("iemocap", 2)
    with torch.inference_mode():
        state = tiny.prefill([r.audio for r in reqs], [r.prompt for r in reqs], reserve=16)
        first = state.cache.layers[0]
        prompt = first.keys.clone()
        fork = fork_cache(state.cache, tiny.lm.config, 8)
        layer = fork.layers[0]
        assert layer._k.data_ptr() == first._k.data_ptr() and layer.length == first.length
        tiny.decode(type(state)(state.logits, fork, state.attention_mask, state.next_position),
                    Decoding(max_new_tokens=4))
        assert layer.length > first.length  # the fork grew past the prompt ...
        torch.testing.assert_close(first.keys, prompt, rtol=0, atol=0)  # ... which is intact


def test_out_of_memory_drops_the_pooled_buffers_and_a_decoded_batch_lets_go_of_its_cache(
        tiny, monkeypatch):
    """A decoding that runs out of memory releases the pool before the halved retry's prefill;
    each batch's forks are let go of once it is decoded, before the next batch's prefill."""
    _, reqs = requests_for("crema_d", 4)
    held_at_prefill = []
    prefill, decode = type(tiny).prefill, type(tiny).decode

    def spy_prefill(self, *args, **kwargs):
        step = self._static_step
        held_at_prefill.append((len(self._pool.buffers), step is not None and step.cache is not None))
        return prefill(self, *args, **kwargs)

    def decode_or_oom(self, state, *args, **kwargs):
        if state.logits.shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        return decode(self, state, *args, **kwargs)

    monkeypatch.setattr(type(tiny), "prefill", spy_prefill)
    monkeypatch.setattr(type(tiny), "decode", decode_or_oom)
    static = tiny.with_options(decode="static", batch_size=4)
    with pytest.warns(UserWarning, match="batch size halved to 2"):
        out = static.generate_many(reqs, DECODINGS[:2])
    assert all(g.candidates and g.error is None for answers in out for g in answers)
    layers = tiny.lm.config.num_hidden_layers
    assert held_at_prefill == [(0, False), (0, False), (2 * layers, False)]
    assert static._pool is None and static._static_step is None


def test_a_batch_that_ran_out_of_memory_starts_the_next_call_at_the_size_that_fitted(
        tiny, monkeypatch):
    """The first call halves 4 to 2; the second (the next chunk of a run) starts at 2 and runs
    out of memory no more, so the work of a batch too big is not thrown away once per call.
    The clips heard lately are let go of at the halving: they take memory the batch needs."""
    _, reqs = requests_for("crema_d", 4)
    decode, prefilled = type(tiny).decode, []

    def decode_or_oom(self, state, *args, **kwargs):
        prefilled.append(state.logits.shape[0])
        if state.logits.shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        return decode(self, state, *args, **kwargs)

    monkeypatch.setattr(type(tiny), "decode", decode_or_oom)
    backend = tiny.with_options(batch_size=4)
    cleared = []
    monkeypatch.setattr(backend.heard, "clear", lambda: cleared.append(len(backend.heard)))
    with pytest.warns(UserWarning, match="batch size halved to 2"):
        first = backend.generate_many(reqs, DECODINGS[:1])
    assert prefilled == [4, 2, 2] and backend.batch_sizes.halvings == 1
    assert cleared == [4]  # the clips heard let go of before the smaller batch ran
    prefilled.clear()
    again = backend.generate_many(reqs, DECODINGS[:1])
    assert prefilled == [2, 2] and backend.batch_sizes.halvings == 1
    assert _rows(again[0]) == _rows(first[0])
    assert backend.batch_size_for(reqs, 1, 8) == 2
    assert backend.batch_size_for(reqs, 5, 8) == 4  # another kind of batch: not learned
