"""Prompts longer than the model's context: each refused as its own item's error, before a batch
runs, on the fast path (the tiny Qwen2-Audio) and in the pure checks."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.models._context import check_fits, context_window, over_context, too_long

LONG = "I said " * 3_000  # about 6,000 tokens, the tiny model's context is 4,096


def test_the_window_is_the_text_configs_else_the_configs_own():
    text = SimpleNamespace(max_position_embeddings=8192)
    assert context_window(SimpleNamespace(text_config=text, max_position_embeddings=3)) == 8192
    assert context_window(SimpleNamespace(max_position_embeddings=4096)) == 4096
    for config in (None, SimpleNamespace(), SimpleNamespace(max_position_embeddings=0),
                   SimpleNamespace(max_position_embeddings=True),
                   SimpleNamespace(text_config=None, max_position_embeddings="4096")):
        assert context_window(config) is None


def test_a_prompt_fits_with_its_answers_room_and_not_one_token_more():
    assert too_long("p", 4000, 96, 4096) is None
    assert too_long("p", 4001, 96, 4096) == ("prompt of 4,001 tokens (1 characters of text) with "
                                             "room for 96 new tokens is longer than the model's "
                                             "context of 4,096 tokens")
    assert too_long("p", 10**6, 96, None) is None
    with pytest.raises(ValueError, match="prompt of 5,000 tokens"):
        check_fits("p", 5000, 0, 4096)


def test_a_cheap_bound_within_the_limit_stands_in_for_counting():
    requests = [SimpleNamespace(prompt="short"), SimpleNamespace(prompt="x" * 500)]
    limits = []

    def tokens(request, limit):
        limits.append(limit)
        return len(request.prompt)

    refused = over_context(requests, 96, 400, tokens)
    assert limits == [304, 304]
    assert refused == {1: "prompt of up to 500 tokens (500 characters of text) with room for 96 "
                          "new tokens is longer than the model's context of 400 tokens"}
    assert over_context(requests, 96, None, tokens) == {}


torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models import Decoding, Request  # noqa: E402
from harness.models.fast_path import MAX_SAMPLES  # noqa: E402
from tests.helpers import requests_for  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=300))
def test_the_byte_bound_is_never_below_the_token_count(tiny, text):
    exact = tiny.chat.prompt_tokens(text, 16_000 * 6, MAX_SAMPLES, False)
    assert tiny.chat.prompt_tokens(text, 16_000 * 6, MAX_SAMPLES, False, limit=10**9) >= exact


def test_a_prompt_past_the_context_is_its_items_error_and_the_rest_are_answered(tiny):
    _, reqs = requests_for("iemocap", 3)
    long = Request(reqs[1].audio, reqs[1].prompt + LONG, "long-prompt")
    batch = [reqs[0], long, reqs[2]]
    greedy, beams = tiny.generate_many(batch, [Decoding(max_new_tokens=4),
                                               Decoding(mode="beam", num_candidates=2,
                                                        max_new_tokens=4)])
    scores = tiny.label_logprobs(batch, ["Anger", "Sadness"])
    tokens = tiny.chat.prompt_tokens(long.prompt, len(long.audio), MAX_SAMPLES, False)
    assert tokens > 4096
    reason = (f"prompt of up to {tokens:,} tokens ({len(long.prompt):,} characters of text) with "
              "room for 4 new tokens is longer than the model's context of 4,096 tokens")
    assert greedy[1].error == beams[1].error == reason and not greedy[1].candidates
    assert all(g.error is None and g.candidates for g in (*greedy[::2], *beams[::2]))
    assert scores[1].error == reason.replace("room for 4", "room for 2")
    assert np.isnan(scores[1].logprobs).all() and np.isfinite(scores[0].logprobs).all()
    alone = tiny.generate([reqs[0]], Decoding(max_new_tokens=4))[0]
    assert [c.text for c in greedy[0].candidates] == [c.text for c in alone.candidates]


def test_a_prompt_that_fills_the_context_with_its_answers_room_runs(tiny):
    _, [req] = requests_for("crema_d", 1)

    def padded(n):
        return Request(req.audio, req.prompt + " said" * n, "padded")

    def tokens(n):
        return tiny.chat.prompt_tokens(padded(n).prompt, len(req.audio), MAX_SAMPLES, False)

    n = 4092 - tokens(0)
    n += 4092 - tokens(n)
    assert tokens(n) == 4092 and tokens(n + 1) == 4093
    fits, over = tiny.generate([padded(n), padded(n + 1)], Decoding(max_new_tokens=4))
    assert fits.error is None and fits.candidates
    assert over.error.startswith("prompt of up to 4,093 tokens")


def assert_long_prompt_refused(fast, reqs):
    """On a fast-path backend of a tiny architecture (context 4,096): a prompt past the context
    is its request's error, and the request beside it is answered."""
    long = Request(reqs[0].audio, reqs[0].prompt + LONG, "long-prompt")
    out = fast.generate([long, reqs[1]], Decoding(max_new_tokens=4))
    assert out[0].error.startswith("prompt of up to ")
    assert out[0].error.endswith("is longer than the model's context of 4,096 tokens")
    assert out[1].error is None and out[1].candidates


def test_a_long_clip_heard_in_pieces_counts_every_piece_against_the_context(tiny):
    """Under ``long_audio="chunk"`` a 150 s clip is five 30 s audios: its prompt is counted with
    all five, so a prompt that fits beside one window's audio but not beside five is refused."""
    _, [req] = requests_for("crema_d", 1)
    clip = np.resize(req.audio, 150 * 16_000)
    one = tiny.chat.prompt_tokens(req.prompt, len(clip), MAX_SAMPLES, False)
    five = tiny.chat.prompt_tokens(req.prompt, len(clip), MAX_SAMPLES, True)
    assert five - one > 2_000  # four more windows of audio placeholders
    padded = Request(clip, req.prompt + " said" * (4_000 - one), "padded")
    chunking = tiny.with_options(long_audio="chunk")
    window = Request(clip[:MAX_SAMPLES], padded.prompt, "one-window")
    out, fits = chunking.generate([padded, window], Decoding(max_new_tokens=4))
    assert out.error is not None and out.error.startswith("prompt of up to ")
    assert not out.candidates
    assert fits.error is None and fits.candidates  # the same prompt beside one window's audio


def test_a_limit_the_byte_bound_keeps_within_spares_the_tokenizer(tiny, monkeypatch):
    """The bound (audio tokens, the chat text's UTF-8 bytes and 2) is returned where it is at
    most ``limit``, exactly at the limit too; one token over, the text is tokenized."""
    chat, samples = tiny.chat, 16_000 * 6
    text = chat.render("Which emotion?", [0])
    quick = samples // 640 + 2 + len(text.encode("utf-8")) + 2
    exact = chat.prompt_tokens("Which emotion?", samples, MAX_SAMPLES, False)
    assert exact < quick
    calls = []
    real = chat.tokenizer
    monkeypatch.setattr(chat, "tokenizer", lambda text: calls.append(text) or real(text))
    assert chat.prompt_tokens("Which emotion?", samples, MAX_SAMPLES, False, limit=quick) == quick
    assert calls == []
    assert chat.prompt_tokens("Which emotion?", samples, MAX_SAMPLES, False,
                              limit=quick - 1) == exact
    assert calls == [text]


@pytest.mark.parametrize(("seconds", "chunked", "pieces"), [
    (0.5, False, 1), (6, False, 1), (30, False, 1), (61, False, 1), (61, True, 3), (120, True, 4)])
def test_the_token_bound_holds_the_real_prompt_within_two_tokens_a_window(tiny, seconds, chunked,
                                                                         pieces):
    """Never below the prompt's real length (a prompt counted short could pass the context),
    and at most 2 tokens a 30 s window above it (the audio's rounding), so that a prompt that
    fits is not refused."""
    samples = int(16_000 * seconds)
    audio = np.random.default_rng(0).normal(0, 0.1, samples).astype(np.float32)
    backend = tiny.with_options(long_audio="chunk" if chunked else "truncate")
    with torch.inference_mode():
        real = int(backend.prefill([audio], ["Which emotion?"]).attention_mask.sum())
    bound = backend.chat.prompt_tokens("Which emotion?", samples, MAX_SAMPLES, chunked)
    assert real <= bound <= real + 2 * pieces
