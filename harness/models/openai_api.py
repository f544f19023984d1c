"""GPT-4o audio and any OpenAI-compatible server (e.g. vLLM) through the ``openai`` SDK.

Audio goes as a chat ``input_audio`` part (16-bit WAV, base64). Retries of 429/5xx/timeouts are
the SDK's own (exponential backoff, ``Retry-After`` honoured); requests run at most
``concurrency`` at a time; an item whose retries run out is recorded with its reason.
"""

from __future__ import annotations

import base64
import math
import os

from harness._values import named_flag
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
from harness.models._deadline import deadline_transport, httpx_module
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

GPT4O_AUDIO_MODEL = "gpt-4o-audio-preview"


class OpenAIChatBackend(Capped):
    """A chat-completions endpoint that accepts audio input."""

    def __init__(self, name: str, model: str, *, api_key: str, base_url: str | None = None,
                 capabilities: Capabilities, max_retries: int = 4, timeout: float = 60.0,
                 deadline_s: float = 120.0, concurrency: int = 8, json_mode: bool = False,
                 prices: dict | None = None, key_variable: str = "OPENAI_API_KEY",
                 max_cost_usd: float | None = None):
        """``timeout`` bounds each read, ``deadline_s`` each request as a whole (a server that
        drips its answer is cut off, and the SDK retries as after any timeout);
        ``max_cost_usd`` caps the estimated spending (:mod:`harness.models._spending`)."""
        from openai import OpenAI

        self.cap = spending_cap(name, model, max_cost_usd, prices)
        self.model = model
        self.json_mode = json_mode
        self.concurrency = concurrency
        self.prices = prices
        self.key_variable = key_variable
        server = endpoint(base_url, "api.openai.com")
        self._scrub = Scrubber([api_key, *server.secrets])
        http = httpx_module().Client(transport=deadline_transport(deadline_s), timeout=timeout,
                                     auth=server.auth)
        self._client = OpenAI(api_key=api_key, base_url=server.url, max_retries=max_retries,
                              timeout=timeout, http_client=http)
        self.info = ModelInfo(name, model, "", server.shown, capabilities)
        self._probed: dict[tuple[str, bool], str | None] = {}  # kind of decoding -> why not

    def close(self) -> None:
        """Close the HTTP client and its kept-alive connections (a call after it is its item's
        error)."""
        self._client.close()

    def generate(self, requests, decoding: Decoding) -> list[Generation]:
        """Candidates per request. The first request of a kind of decoding that a server may not
        support (beam search, several candidates) goes alone, as a probe; what it shows is
        remembered, and an unsupported kind raises DecodingUnsupported instead of failing every
        item the same way."""
        if decoding.mode == "beam" and not self.info.capabilities.beam_search:
            raise DecodingUnsupported(f"{self.info.name} has no beam search")
        self.cap.check()  # reached: nothing more is sent
        requests = list(requests)
        kind = (decoding.mode, decoding.num_candidates > 1)
        out: list[Generation] = []
        if requests and kind != ("greedy", False) and kind not in self._probed:
            out.append(self._probe(requests.pop(0), decoding, kind))
        if self._probed.get(kind):
            raise DecodingUnsupported(self._probed[kind])
        return out + run_bounded(lambda r: self._one(r, decoding), requests, self.concurrency,
                                 self._scrub, self._key_rejected, self.cap)

    def _probe(self, request, decoding: Decoding, kind: tuple[str, bool]) -> Generation:
        """One request of a new kind of decoding: a 400/404/422 answer, fewer candidates than
        asked, or beams without log-probabilities mean the server cannot decode this way; a
        failure that says nothing about the decoding is the item's, as any other (sent once)."""
        import openai

        what = (f"{decoding.mode} decoding with {decoding.num_candidates} candidates"
                + (" (vLLM's use_beam_search)" if decoding.mode == "beam" else ""))
        refusals: list[openai.APIStatusError] = []

        def call(request) -> Generation:
            try:
                return self._one(request, decoding)
            except (openai.BadRequestError, openai.NotFoundError,
                    openai.UnprocessableEntityError) as exc:
                refusals.append(exc)
                raise

        [generation] = run_bounded(call, [request], 1, self._scrub, self._key_rejected, self.cap)
        if refusals:
            exc = refusals[0]
            detail = exc.body.get("detail", exc.body) if isinstance(exc.body, dict) else exc.message
            self._probed[kind] = self._scrub(f"{self.info.name}: the server refused {what} "
                                             f"(HTTP {exc.status_code}: {str(detail)[:300]})")
            return Generation(error=self._probed[kind])
        if generation.error is not None:  # nothing learnt: the next request of this kind probes
            return generation
        found = len(generation.candidates)
        if found < decoding.num_candidates:
            self._probed[kind] = (f"{self.info.name}: the server returned {found} candidate(s) where "
                                  f"{what} asked for {decoding.num_candidates} (it ignores n)")
        elif decoding.mode == "beam" and not all(math.isfinite(c.logprob) for c in generation.candidates):
            self._probed[kind] = (f"{self.info.name}: the server returned beams without "
                                  "log-probabilities, so they cannot be ranked or weighed")
        else:
            self._probed[kind] = None
        return generation

    def _key_rejected(self, exc: Exception) -> str | None:
        import openai

        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return (f"{self.info.name}: the API refused the key (HTTP {exc.status_code}); "
                    f"check {self.key_variable}")
        return None

    def _one(self, request, decoding: Decoding) -> Generation:
        audio = base64.b64encode(wav_bytes(request.audio)).decode()
        messages = [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
            {"type": "text", "text": request.prompt}]}]
        kwargs: dict = {"model": self.model, "messages": messages, "n": decoding.num_candidates,
                        "max_tokens": decoding.max_new_tokens, "seed": decoding.seed,
                        "temperature": 0.0 if decoding.mode == "greedy" else decoding.temperature}
        if decoding.mode == "sample":
            kwargs["top_p"] = decoding.top_p
        if self.info.capabilities.logprobs:
            kwargs["logprobs"] = True
        if decoding.mode == "beam":  # vLLM's extension of the API
            kwargs["extra_body"] = {"use_beam_search": True, "length_penalty": 0.0}
            kwargs["temperature"] = 0.0
        if self.json_mode or decoding.constrained:
            kwargs["response_format"] = {"type": "json_object"}
        response = self._client.chat.completions.create(**kwargs)
        return self._generation(response, decoding.num_candidates)

    def _generation(self, response, asked: int) -> Generation:
        if not hasattr(response, "choices"):  # an HTML error page, a proxy's text
            raise ValueError(f"the server's answer is not a chat completion: {str(response)[:200]!r}")
        if not response.choices:
            raise ValueError(f"the server's chat completion holds no choices: {str(response)[:200]!r}")
        usage = response.usage
        completion = getattr(usage, "completion_tokens", 0) or 0
        choices, extra = asked_for(response.choices, asked)
        candidates, endings = [], []
        for choice in choices:
            tokens = getattr(getattr(choice, "logprobs", None), "content", None)
            if tokens:
                logprob = math.fsum(t.logprob for t in tokens)
                n_tokens = len(tokens)
            else:
                # the usage shared among the choices given (a server may give fewer than asked)
                logprob, n_tokens = float("nan"), completion // max(1, len(response.choices))
            # a refusal carries its text apart from the content: keep it, it says why
            text = choice.message.content or getattr(choice.message, "refusal", None) or ""
            candidates.append(Candidate(text, n_tokens, logprob,
                                        not tokens or math.isfinite(logprob)))
            endings.append((text, getattr(choice, "finish_reason", None)))
        if all(math.isfinite(c.logprob) for c in candidates):  # best first, when ranked
            candidates.sort(key=lambda c: -c.logprob)
        details = getattr(usage, "prompt_tokens_details", None)
        return Generation(tuple(candidates), usage=usage_of(
            getattr(usage, "prompt_tokens", 0) or 0, completion, self.model, self.prices,
            audio_tokens=getattr(details, "audio_tokens", None)),
            notes=extra + silent_endings(endings, normal="stop"),
            served_by=served_name(getattr(response, "model", None), self.model))

    def label_logprobs(self, requests, labels):
        raise NotImplementedError(f"{self.info.name} returns no label log-probabilities")


def gpt_4o(model: str | None = None, api_key: str | None = None, **options) -> OpenAIChatBackend:
    """``gpt-4o``: OpenAI's audio chat model (``$OPENAI_API_KEY``; no logprobs for audio)."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ModelUnavailable("gpt-4o: set OPENAI_API_KEY")
    caps = Capabilities(logprobs=False, n_candidates=True, beam_search=False,
                        label_logprobs=False, structured_output=True)
    return OpenAIChatBackend("gpt-4o", model or os.environ.get("GPT4O_AUDIO_MODEL",
                                                               GPT4O_AUDIO_MODEL),
                             api_key=key, capabilities=caps, **options)


def openai_compatible(model: str, base_url: str | None = None, api_key: str | None = None,
                      beam_search: bool = True, n_candidates: bool = True, logprobs: bool = True,
                      **options) -> OpenAIChatBackend:
    """``openai-compatible:<model>``: a server such as vLLM at ``$OPENAI_COMPATIBLE_BASE_URL``.

    What the server cannot do is found by probing (see :meth:`OpenAIChatBackend.generate`), or
    said up front (``--model-arg openai-compatible:<model>.beam_search=false``; likewise
    ``n_candidates`` and ``logprobs``), so that strategies needing it skip unsent."""
    url = base_url or os.environ.get("OPENAI_COMPATIBLE_BASE_URL")
    if not url:
        raise ModelUnavailable(f"openai-compatible:{model}: set OPENAI_COMPATIBLE_BASE_URL "
                               "(e.g. http://localhost:8000/v1)")
    key = api_key or os.environ.get("OPENAI_COMPATIBLE_API_KEY") or "EMPTY"
    said = {"beam_search": beam_search, "n_candidates": n_candidates, "logprobs": logprobs}
    caps = Capabilities(**{name: named_flag(name, value) for name, value in said.items()},
                        label_logprobs=False, structured_output=True)
    options.setdefault("key_variable", "OPENAI_COMPATIBLE_API_KEY")
    return OpenAIChatBackend(f"openai-compatible:{model}", model, api_key=key, base_url=url,
                             capabilities=caps, **options)
