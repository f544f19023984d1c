"""What the API backends share: WAV encoding, bounded concurrency, secret scrubbing, cost."""

from __future__ import annotations

import base64
import io
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from harness.models._spending import SpendingCap
from harness.models.api import SERVED_BY_CHARS, Generation, KeyRejected

# USD per million tokens: (text input, audio input, output); the providers' list prices, for
# the cost column's estimate; override per model with prices= (an (input, output) pair also does)
PRICES = {
    "gpt-4o-audio-preview": (2.5, 40.0, 10.0),
    "gemini-2.0-flash": (0.10, 0.70, 0.40),
    "gemini-2.5-pro": (1.25, 1.25, 10.0),  # prompts up to 200k tokens; thinking billed as output
}
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,})")


def wav_bytes(audio: np.ndarray, sr: int = 16_000) -> bytes:
    """16-bit PCM WAV of a float clip, as the APIs take it."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class Scrubber:
    """Removes the backend's secrets from text: verbatim, reversed and base64-encoded (at any
    alignment, either alphabet), and anything shaped like an API key."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        self._forms = sorted({form for s in secrets if s for form in _forms(s)}, key=len,
                             reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "***")
        return _KEY_SHAPES.sub("***", text)

    def generation(self, generation: Generation) -> Generation:
        """The generation with every candidate's text, its error and its notes scrubbed (what
        the model or the server says goes into the cache and the records)."""
        candidates = tuple(replace(c, text=self(c.text)) for c in generation.candidates)
        error = None if generation.error is None else self(generation.error)
        notes = tuple(self(note) for note in generation.notes)
        return replace(generation, candidates=candidates, error=error, notes=notes,
                       served_by=self(generation.served_by))


@dataclass(frozen=True)
class Endpoint:
    """A server's URL taken apart. ``url``: where requests go, without its user part, which goes
    as ``auth`` (a proxy's basic auth: the client sends it as a header, so that neither the URL
    it logs nor anything recorded holds it); ``shown``: what records name (no user part, no
    query); ``secrets``: for the :class:`Scrubber` to take out of every error text."""

    url: str | None
    shown: str
    auth: tuple[str, str] | None = None
    secrets: tuple[str, ...] = ()


def endpoint(url: str | None, default: str) -> Endpoint:
    """``url`` (``https://user:token@host/v1?x=y``) as an :class:`Endpoint`; ``default`` is
    what records name where no URL is given."""
    if not url:
        return Endpoint(None, default)
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    user, password = (urllib.parse.unquote(v) if v else "" for v in (parts.username, parts.password))
    # the password; a user part alone is a token (https://TOKEN@host); a user name beside a
    # password is not scrubbed from the model's texts, nor is a short query value ("1", "true")
    written = parts.password or parts.username  # as the URL writes it, %-escapes and all
    secrets = [written, urllib.parse.unquote(written)] if written else []
    secrets += [v for _, v in urllib.parse.parse_qsl(parts.query) if len(v) >= 8]
    return Endpoint(urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query,
                                             parts.fragment)),
                    urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")),
                    (user, password) if user or password else None, tuple(secrets))


def _forms(secret: str) -> set[str]:
    """The secret, reversed, and the parts of its base64 encodings that depend on it alone."""
    forms = {secret, secret[::-1]}
    if len(secret) >= 8:
        raw = secret.encode()
        for offset in range(3):  # where the secret starts within a 3-byte group
            encoded = base64.b64encode(b"\0" * offset + raw).decode()
            first, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
            core = encoded[first:end]
            forms |= {core, core.replace("+", "-").replace("/", "_")}
    return {f for f in forms if len(f) >= 4}


def run_bounded(call: Callable, requests: Sequence, workers: int, scrub: Scrubber,
                key_rejected: Callable[[Exception], str | None] = lambda exc: None,
                cap: SpendingCap | None = None) -> list[Generation]:
    """``call(request)`` for every request, at most ``workers`` at a time, in request order.

    A request whose call raises (after the SDK's own retries) becomes a Generation carrying the
    reason, with secrets scrubbed; the others are unaffected. An error that ``key_rejected``
    recognises (a 401/403) stops the rest unsent and raises :class:`KeyRejected`. Each answer's
    cost is counted against ``cap``; once it is reached the rest go unsent, each an error
    (the backend then says it stopped: :func:`harness.models.api.raise_if_stopped`).

    Raises:
        KeyRejected: the API refused the key.
    """
    refused: list[str] = []
    stop = threading.Event()

    def safe(request) -> Generation:
        if stop.is_set():
            return Generation(error="not sent: the API refused the key")
        if cap is not None and not cap.allows():
            return cap.refusal()
        try:
            answer = scrub.generation(call(request))
        except Exception as exc:  # SDK errors, timeouts, malformed bodies: one item's failure
            message = key_rejected(exc)
            if message is not None:
                refused.append(message)
                stop.set()
            return Generation(error=scrub(_why(exc))[:500])
        if cap is not None:
            cap.add(answer)
        return answer

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        out = list(pool.map(safe, requests))
    if refused:
        raise KeyRejected(refused[0])
    return out


def _why(exc: Exception) -> str:
    """The error, and the one it was raised from where its own words do not say it: openai's
    ``APIConnectionError: Connection error.`` wraps the reason (refused, reset, cut off)."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is None or str(cause) in text:
        return text
    return f"{text} ({type(cause).__name__}: {cause})"


def spending_cap(name: str, model: str, limit_usd: float | None, prices: dict | None
                 ) -> SpendingCap:
    """The backend's :class:`SpendingCap` (``max_cost_usd``), refused where ``model`` has no
    price in ``prices`` (or :data:`PRICES`)."""
    return SpendingCap(name, limit_usd, priced=_price(model, prices or PRICES) is not None)


def _price(model: str, prices: dict) -> tuple[float, ...] | None:
    """The model's prices, or those of the longest name it extends: a dated snapshot
    (``gpt-4o-audio-preview-2024-12-17``, ``gemini-2.0-flash-001``) is priced as its family."""
    if model in prices:
        return prices[model]
    family = max((name for name in prices if model.startswith(f"{name}-")), key=len, default=None)
    return None if family is None else prices[family]


def usage_of(prompt_tokens: int, completion_tokens: int, model: str, prices: dict | None = None,
             audio_tokens: int | None = None, thinking_tokens: int = 0) -> dict:
    """Token counts and the estimated cost in USD (None when the model has no known price): the
    prompt's audio tokens at the audio rate and the rest at the text rate, where the API says
    which are which (all at the audio rate where it does not: an upper bound); a thinking
    model's thoughts billed as output, as the providers bill them."""
    usage = {"prompt_tokens": int(prompt_tokens), "completion_tokens": int(completion_tokens),
             "thinking_tokens": int(thinking_tokens)}
    if audio_tokens is not None:
        usage["audio_tokens"] = int(audio_tokens)
    price = _price(model, prices or PRICES)
    if price is None:
        return {**usage, "cost_usd": None}
    text_rate, audio_rate, out_rate = price if len(price) == 3 else (price[0], price[0], price[1])
    audio = prompt_tokens if audio_tokens is None else min(audio_tokens, prompt_tokens)
    cost = ((prompt_tokens - audio) * text_rate + audio * audio_rate
            + (completion_tokens + thinking_tokens) * out_rate) / 1e6
    return {**usage, "cost_usd": cost}


def served_name(value: object, asked: str) -> str:
    """The model an answer says it came from (``Generation.served_by``): its text, stripped and
    cut to :data:`~harness.models.api.SERVED_BY_CHARS` characters; "" where the answer names
    none, names it as something other than text (a server's own extension, a proxy's garbage)
    or only echoes the name ``asked`` for (vLLM's served name, a snapshot pinned already: the
    record's revision says it)."""
    name = value.strip()[:SERVED_BY_CHARS] if isinstance(value, str) else ""
    return "" if name == asked else name


def asked_for(given: Sequence, asked: int) -> tuple[list, tuple[str, ...]]:
    """The first ``asked`` of the candidates a server ``given`` (in its order, before any
    ranking), and a note where it gave more: a best-of-N over more than N is another protocol."""
    if len(given) <= asked:
        return list(given), ()
    return list(given)[:asked], (f"the server gave {len(given)} candidates where {asked} were "
                                 f"asked for: the first {asked} kept",)


def silent_endings(endings: Sequence[tuple[str, object]], normal: str) -> tuple[str, ...]:
    """Notes on the candidates that came back with no text, by their finish reason: a safety
    block, or a limit spent before the answer began, says nothing in the empty answer itself
    (whose parse failure is all the item would otherwise show). ``endings`` holds each
    candidate's (text, finish reason); ``normal`` is the reason of an answer that ended itself,
    which needs no note."""
    reasons = [getattr(reason, "value", reason) for text, reason in endings if not text.strip()]
    counts = Counter("not given" if r is None else str(r)[:80] for r in reasons if r != normal)
    return tuple(f"{n} of {len(endings)} candidate(s) came back with no text "
                 f"(finish reason {reason})" for reason, n in counts.items())
