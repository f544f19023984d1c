"""What the API backends share: WAV encoding, bounded concurrency, secret scrubbing, cost."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from harness.models.api import Generation

# USD per million tokens (input, output); estimates for the cost column, override per model
PRICES = {
    "gpt-4o-audio-preview": (40.0, 10.0),  # audio input tokens
    "gemini-2.0-flash": (0.7, 0.4),
    "gemini-2.5-pro": (1.25, 10.0),
}
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,})")


def wav_bytes(audio: np.ndarray, sr: int = 16_000) -> bytes:
    """16-bit PCM WAV of a float clip, as the APIs take it."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class Scrubber:
    """Removes the backend's secrets (and anything shaped like an API key) from text."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        self._secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _KEY_SHAPES.sub("***", text)


def run_bounded(call: Callable, requests: Sequence, workers: int, scrub: Scrubber) -> list[Generation]:
    """``call(request)`` for every request, at most ``workers`` at a time, in request order.

    A request whose call raises (after the SDK's own retries) becomes a Generation carrying the
    reason, with secrets scrubbed; the others are unaffected.
    """

    def safe(request) -> Generation:
        try:
            return call(request)
        except Exception as exc:  # SDK errors, timeouts, malformed bodies: one item's failure
            return Generation(error=scrub(f"{type(exc).__name__}: {exc}")[:500])

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(safe, requests))


def usage_of(prompt_tokens: int, completion_tokens: int, model: str,
             prices: dict | None = None) -> dict:
    """Token counts and the estimated cost in USD (None when the model has no known price)."""
    price = (prices or PRICES).get(model)
    cost = None
    if price is not None:
        cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6
    return {"prompt_tokens": int(prompt_tokens), "completion_tokens": int(completion_tokens),
            "cost_usd": cost}
