"""Gemini 2.0 Flash and 2.5 Pro through the ``google-genai`` SDK.

Audio goes as ``Part.from_bytes(data=wav, mime_type="audio/wav")``. The SDK retries 5xx and
transport errors itself (exponential backoff with jitter); it does not read ``Retry-After``, so a
429 carrying one is waited out here, a bounded number of times, before the SDK's retries take over.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from harness.models._api_common import (
    Scrubber,
    asked_for,
    endpoint,
    run_bounded,
    served_name,
    silent_endings,
    spending_cap,
    usage_of,
    wav_bytes,
)
from harness.models._deadline import deadline_transport
from harness.models._spending import Capped
from harness.models.api import (
    Candidate,
    Capabilities,
    Decoding,
    DecodingUnsupported,
    Generation,
    ModelInfo,
    ModelUnavailable,
)

RETRY_AFTER_MAX_S = 60.0
# Gemini 2.5 Pro always thinks, and its output limit counts the thoughts with the answer: a limit
# of the answer's 96 tokens left most answers empty (finish reason MAX_TOKENS). A thinking
# model's limit is the answer's plus its thinking budget: the one given, else the most it may
# think (its default, dynamic thinking, decides how much).
MAX_THINKING_TOKENS = 32_768


class GeminiBackend(Capped):
    """A Gemini model that hears the clip and reads the prompt."""

    def __init__(self, name: str, model: str, *, api_key: str, base_url: str | None = None,
                 attempts: int = 5, timeout_s: float = 60.0, deadline_s: float = 120.0,
                 concurrency: int = 8, rate_limit_retries: int = 3, json_mode: bool = False,
                 logprobs: bool = False, prices: dict | None = None,
                 retry_initial_delay: float = 1.0, retry_jitter: float = 1.0, thinks: bool = False,
                 thinking_budget: int | None = None, max_cost_usd: float | None = None):
        """``timeout_s`` bounds each read, ``deadline_s`` each request as a whole (a server that
        drips its answer is cut off, and the SDK retries as after any timeout). ``thinks``: a
        thinking model (2.5 Pro), whose ``thinking_budget`` (tokens; None: its own dynamic
        thinking) is added to the answer's token limit. ``max_cost_usd`` caps the estimated
        spending (:mod:`harness.models._spending`). ``retry_jitter``: at most that many seconds
        drawn at random and added to each retry's wait (the SDK's; some google-genai releases,
        1.24 among them, read 0 as unset: their default, 1)."""
        from google import genai
        from google.genai import types

        self.cap = spending_cap(name, model, max_cost_usd, prices)
        self.model = model
        self.json_mode, self.concurrency, self.prices = json_mode, concurrency, prices
        self.rate_limit_retries = rate_limit_retries
        self.thinks, self.thinking_budget = thinks, _budget(name, thinks, thinking_budget)
        self._types = types
        server = endpoint(base_url, "generativelanguage.googleapis.com")
        self._scrub = Scrubber([api_key, *server.secrets])
        retry = types.HttpRetryOptions(attempts=attempts, initial_delay=retry_initial_delay,
                                       jitter=retry_jitter, max_delay=30.0,
                                       http_status_codes=[408, 500, 502, 503, 504])
        http = types.HttpOptions(base_url=server.url, timeout=int(timeout_s * 1000),
                                 retry_options=retry,
                                 client_args={"transport": deadline_transport(deadline_s),
                                              "auth": server.auth})
        self._client = genai.Client(api_key=api_key, http_options=http)
        caps = Capabilities(logprobs=logprobs, n_candidates=True, beam_search=False,
                            label_logprobs=False, structured_output=True)
        thinking = () if not thinks else (("thinking_budget", str(thinking_budget or "dynamic")),)
        self.info = ModelInfo(name, model, "", server.shown, caps, options=thinking)

    def close(self) -> None:
        """Close the HTTP client and its kept-alive connections (a call after it is its item's
        error). An older google-genai (1.24, the floor) has no ``Client.close``: its HTTP client
        is closed."""
        close = getattr(self._client, "close", None)
        if close is None:
            close = self._client._api_client._httpx_client.close
        close()

    def generate(self, requests, decoding: Decoding) -> list[Generation]:
        if decoding.mode == "beam":
            raise DecodingUnsupported(f"{self.info.name} has no beam search")
        self.cap.check()  # reached: nothing more is sent
        return run_bounded(lambda r: self._one(r, decoding), requests, self.concurrency,
                           self._scrub, self._key_rejected, self.cap)

    def _key_rejected(self, exc: Exception) -> str | None:
        from google.genai import errors

        if isinstance(exc, errors.APIError) and exc.code in (401, 403):
            return (f"{self.info.name}: the API refused the key (HTTP {exc.code}); check "
                    "GEMINI_API_KEY (or GOOGLE_API_KEY)")
        return None

    def _config(self, decoding: Decoding):
        thinking = self.thinking_budget if self.thinking_budget is not None else MAX_THINKING_TOKENS
        config: dict[str, Any] = {"temperature": 0.0 if decoding.mode == "greedy" else decoding.temperature,
                  "candidate_count": decoding.num_candidates, "seed": decoding.seed,
                  "max_output_tokens": decoding.max_new_tokens + (thinking if self.thinks else 0)}
        if self.thinks and self.thinking_budget is not None:
            config["thinking_config"] = self._types.ThinkingConfig(thinking_budget=self.thinking_budget)
        if decoding.mode == "sample":
            config["top_p"] = decoding.top_p
        if self.json_mode or decoding.constrained:
            config["response_mime_type"] = "application/json"
        if decoding.constrained:
            config["response_schema"] = {
                "type": "OBJECT", "properties": {k: {"type": "NUMBER"} for k in decoding.json_labels},
                "required": list(decoding.json_labels), "property_ordering": list(decoding.json_labels)}
        if self.info.capabilities.logprobs:
            config["response_logprobs"] = True
        return self._types.GenerateContentConfig(**config)

    def _one(self, request, decoding: Decoding) -> Generation:
        from google.genai import errors

        contents = [self._types.Part.from_bytes(data=wav_bytes(request.audio),
                                                mime_type="audio/wav"), request.prompt]
        for attempt in range(self.rate_limit_retries + 1):
            try:
                response = self._client.models.generate_content(
                    model=self.model, contents=contents, config=self._config(decoding))
                return self._generation(response, decoding.num_candidates)
            except errors.APIError as exc:
                wait = _retry_after(exc)
                if exc.code != 429 or wait is None or attempt == self.rate_limit_retries:
                    raise
                time.sleep(min(wait, RETRY_AFTER_MAX_S))
        raise AssertionError("unreachable")

    def _generation(self, response, asked: int) -> Generation:
        if not response.candidates:  # blocked before any candidate: say why
            feedback = getattr(response, "prompt_feedback", None)
            reason = getattr(feedback, "block_reason", None)
            return Generation(error=f"no candidates: {reason or 'the answer was empty'}")
        meta = response.usage_metadata
        completion = getattr(meta, "candidates_token_count", 0) or 0
        given, extra = asked_for(response.candidates, asked)
        candidates = []
        for cand in given:
            parts = getattr(cand.content, "parts", None) or []
            # a thought summary (where thoughts are asked for) is not the answer
            text = "".join(p.text for p in parts
                           if getattr(p, "text", None) and not getattr(p, "thought", None))
            n_tokens = getattr(cand, "token_count", None) or completion // max(
                1, len(response.candidates))  # the count is of every candidate given
            avg = getattr(cand, "avg_logprobs", None)
            logprob = avg * n_tokens if avg is not None else float("nan")
            candidates.append(Candidate(text, n_tokens, logprob,
                                        avg is None or math.isfinite(logprob)))
        endings = [(c.text, getattr(cand, "finish_reason", None))
                   for c, cand in zip(candidates, given)]
        return Generation(tuple(candidates), usage=usage_of(
            getattr(meta, "prompt_token_count", 0) or 0, completion, self.model, self.prices,
            audio_tokens=_audio_tokens(meta),
            thinking_tokens=getattr(meta, "thoughts_token_count", 0) or 0),
            notes=extra + silent_endings(endings, normal="STOP"),
            served_by=served_name(getattr(response, "model_version", None), self.model))

    def label_logprobs(self, requests, labels):
        raise NotImplementedError(f"{self.info.name} returns no label log-probabilities")


def _retry_after(exc) -> float | None:
    """The 429's ``Retry-After`` in seconds; None where there is none or it is not a finite
    number of seconds of at least 0 (a date, ``nan``, ``-5``: the 429 then stands, where a NaN
    or negative wait used to fail the item in ``time.sleep``)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def gemini(name: str, thinks: bool = False):
    """Factory for ``gemini-2.0-flash`` / ``gemini-2.5-pro`` (``$GEMINI_API_KEY`` or
    ``$GOOGLE_API_KEY``; logprobs only where the model offers them: off unless asked; a thinking
    model's ``thinking_budget`` as ``--model-arg gemini-2.5-pro.thinking_budget=128``; a pinned
    snapshot as ``--model-arg gemini-2.0-flash.model=gemini-2.0-flash-001``, where the name
    itself is an alias Google moves)."""

    def factory(api_key: str | None = None, model: str | None = None, **options) -> GeminiBackend:
        key = api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise ModelUnavailable(f"{name}: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
        return GeminiBackend(name, model or name, api_key=key, thinks=thinks, **options)

    return factory


gemini_2_0_flash = gemini("gemini-2.0-flash")
gemini_2_5_pro = gemini("gemini-2.5-pro", thinks=True)


def _budget(name: str, thinks: bool, budget: Any) -> int | None:
    """The thinking budget given, checked: a whole number of tokens, for a thinking model."""
    if budget is None:
        return None
    if not thinks:
        raise ValueError(f"{name} does not think: it takes no thinking_budget")
    if not isinstance(budget, int) or isinstance(budget, bool) or not 0 < budget <= MAX_THINKING_TOKENS:
        raise ValueError(f"{name}: thinking_budget must be a whole number of tokens from 1 to "
                         f"{MAX_THINKING_TOKENS:,}, not {budget!r}")
    return budget


def _audio_tokens(meta: Any) -> int | None:
    """The prompt's audio tokens, where the response counts them by modality."""
    details = getattr(meta, "prompt_tokens_details", None)
    if not details:
        return None
    return sum(d.token_count or 0 for d in details if "AUDIO" in str(getattr(d, "modality", "")))
