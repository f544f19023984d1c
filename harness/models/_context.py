"""Prompts longer than the model's context window: refused, each its own item's error.

Past the positions it was trained on (``max_position_embeddings``), a model's answer means
nothing, yet it may still parse: a transcript of 100,000 characters (a damaged label file that
runs a dialog into one line) made the tiny model's prompt about 28,000 tokens against its 4,096,
took 11.7 GiB on the CPU for a batch of eight, and came back as a distribution the parser
read. Such a request is refused before any batch runs, with its size, and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.models._long_audio import run_fitting
from harness.models.fast_path import MAX_SAMPLES


def context_window(config) -> int | None:
    """The LM's context in tokens (``max_position_embeddings`` of its text config, else of the
    config itself), or None where the config names none."""
    for part in (getattr(config, "text_config", None), config):
        tokens = getattr(part, "max_position_embeddings", None)
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            return tokens
    return None


def too_long(prompt: str, tokens: int, room: int, window: int | None, bound: bool = False
             ) -> str | None:
    """Why a prompt of ``tokens`` (``bound``: at most that many) with ``room`` new tokens after
    it does not fit ``window``; None where it fits (or the window is unknown)."""
    if window is None or tokens + room <= window:
        return None
    return (f"prompt of {'up to ' if bound else ''}{tokens:,} tokens ({len(prompt):,} characters "
            f"of text) with room for {room:,} new tokens is longer than the model's context of "
            f"{window:,} tokens")


def over_context(requests: Sequence, room: int, window: int | None,
                 tokens: Callable[[object, int], int]) -> dict[int, str]:
    """The requests that do not fit (by index) and why. ``tokens(request, limit)`` is an upper
    bound on a request's prompt tokens; where a cheap one is at most ``limit``, the prompt fits
    and need not be counted more closely."""
    if window is None:
        return {}
    refused = {}
    for i, request in enumerate(requests):
        reason = too_long(request.prompt, tokens(request, window - room), room, window, True)
        if reason is not None:
            refused[i] = reason
    return refused


def check_fits(prompt: str, tokens: int, room: int, window: int | None) -> None:
    """Raise ValueError with :func:`too_long`'s reason where the prompt does not fit (for the
    backends that find out per batch: the batch is then asked again one request at a time)."""
    reason = too_long(prompt, tokens, room, window)
    if reason is not None:
        raise ValueError(reason)


def run_what_fits(backend, requests: Sequence, room: int, run_all: Callable[[list], list],
                  refuse: Callable[[object, str], object]) -> list:
    """``run_all`` over the requests that ``backend`` (a
    :class:`~harness.models.fast_audio_lm.FastAudioLM`) can take, ``refuse(request, reason)``
    for the rest, in request order: clips over its 30 s window as ``options.long_audio`` says
    (harness.models._long_audio), and prompts that with ``room`` new tokens after them would
    pass its LM's context."""
    policy = backend.options.long_audio

    def tokens(request, limit: int) -> int:
        return backend.chat.prompt_tokens(request.prompt, len(request.audio), MAX_SAMPLES,
                                          policy == "chunk", limit)

    over = over_context(requests, room, context_window(backend.lm.config), tokens)
    with backend._torch.inference_mode():
        return run_fitting(requests, MAX_SAMPLES, policy, run_all, refuse, over)
