"""Local HTTP servers (127.0.0.1 only) speaking the OpenAI and Gemini wire formats.

Each answers from a script of behaviours, one per request: ``ok`` (a well-formed answer),
``429`` (with ``Retry-After`` 0.2 s; ``429-hour``: an hour), ``500``, ``timeout`` (answers too
late), ``malformed`` (a body that is not JSON), ``truncated`` (a well-formed response whose model
text is cut off), ``401-echo`` and ``400-echo`` (errors that echo the API key, as some servers
do), ``echo-200`` (an answer whose text holds the key verbatim, reversed, base64-encoded and as a
dictionary key), ``drip`` (a well-formed answer sent one byte every ``delay`` / 40 seconds;
``header-drip``: its status line and headers so, then nothing),
``html`` (a 200 whose body is an HTML page), ``refusal`` (an OpenAI refusal), ``status-NNN`` (an
error answer of that HTTP status). A server that cannot decode as asked: ``400``, ``404`` and
``422`` (refusals in FastAPI's ``{"detail": ...}`` shape; ``400-long``: of 1,000 characters),
``one-choice`` (ignores ``n``), ``two-extra`` (two choices more than ``n``), ``no-logprobs``
(ignores ``logprobs``), ``worst-first`` (its
choices in rising log-probability). ``blocked``: the first OpenAI choice, or every Gemini
candidate, stopped by a content filter before any text; ``thoughts``: Gemini parts that begin
with a thought summary; ``flood``: a well-formed answer followed by 2 MB of JSON whitespace;
``gzip-flood``: the same sent gzip-compressed (about 6 kB on the wire), ``br``: a well-formed
answer labelled ``Content-Encoding: br`` (which the client did not ask for). Every request is
recorded.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = '{"Anger": 0.6, "Disgust": 0.1, "Fear": 0.1, "Happiness": 0.1, "Neutral": 0.1, "Sadness": 0.0}'


class LoopbackServer:
    """An HTTP server on a free loopback port, serving in a thread inside a ``with`` block."""

    def __init__(self, handler) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # serve_forever polls for shutdown every 0.5 s by default: each server's exit waited that long
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedServer(LoopbackServer):
    """A server on a free loopback port; ``script`` is consumed one behaviour per request."""

    def __init__(self, kind: str, script=None, text: str = ANSWER, delay: float = 2.0,
                 served: str | None = None):
        """``served``: the model its answers say gave them (OpenAI's ``model``, else the name
        asked for; Gemini's ``modelVersion``, else none); may be changed between requests."""
        self.kind, self.script, self.text, self.delay = kind, list(script or []), text, delay
        self.served = served
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def next_behaviour(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers),
                                            "body": json.loads(body or b"{}")})
                server.respond(self, server.next_behaviour())

        return Handler

    def respond(self, handler, behaviour: str) -> None:
        if behaviour == "header-drip":  # each byte inside any per-read timeout, for ever
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for byte in b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-pad: " + b"a" * 200:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(self.delay / 40)
            return
        if behaviour == "timeout":
            time.sleep(self.delay)
            behaviour = "ok"
        key = handler.headers.get("authorization", "").removeprefix("Bearer ") + handler.headers.get(
            "x-goog-api-key", "")
        if not self._refuse(handler, behaviour, key):
            self._answer(handler, behaviour, key)

    def _refuse(self, handler, behaviour: str, key: str) -> bool:
        """An error status for ``behaviour``, if it names one."""
        if behaviour in ("429", "429-hour"):
            _send(handler, 429, {"error": {"message": "rate limited", "code": 429,
                                           "status": "RESOURCE_EXHAUSTED"}},
                  {"Retry-After": "3600" if behaviour == "429-hour" else "0.2"})
        elif behaviour == "500":
            _send(handler, 500, {"error": {"message": "boom", "code": 500, "status": "INTERNAL"}},
                  {"retry-after-ms": "10"})
        elif behaviour.startswith("status-"):
            code = int(behaviour.removeprefix("status-"))
            _send(handler, code, {"error": {"message": f"answered {code}", "code": code,
                                            "status": "ERROR"}})
        elif behaviour in ("401-echo", "400-echo"):
            code = int(behaviour[:3])
            _send(handler, code, {"error": {
                "message": f"Incorrect API key provided: {key}", "code": code,
                "status": "UNAUTHENTICATED" if code == 401 else "INVALID_ARGUMENT"}})
        elif behaviour in ("400", "404", "422", "400-long"):
            detail = "x" * 1_000 if behaviour == "400-long" else f"cannot do that ({behaviour})"
            _send(handler, int(behaviour[:3]), {"detail": detail})
        else:
            return False
        return True

    def _answer(self, handler, behaviour: str, key: str) -> None:
        """A 200 for ``behaviour``: a well-formed answer, or one damaged as it names."""
        request = self.requests[-1]["body"]
        if behaviour == "html":
            _send(handler, 200, None, raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                  content_type="text/html")
        elif behaviour == "echo-200":
            encoded = base64.b64encode(f"key={key}".encode()).decode()
            self.respond_text(handler, f'{{"{key}": 0.9, "Anger": 0.1}} {encoded} {key[::-1]}')
        elif behaviour == "refusal":
            _send(handler, 200, self.openai_body(request, None, refusal="I can't help with that."))
        elif behaviour in ("one-choice", "two-extra", "no-logprobs", "worst-first", "blocked",
                           "thoughts"):
            _send(handler, 200, self.openai_body(request, self.text, shape=behaviour)
                  if self.kind == "openai" else self.gemini_body(request, self.text, shape=behaviour))
        elif behaviour == "malformed":
            _send(handler, 200, None, raw=b"this is not json {")
        elif behaviour in ("flood", "gzip-flood", "br"):
            self._flood(handler, request, behaviour)
        else:
            text = self.text[: len(self.text) // 2] if behaviour == "truncated" else self.text
            self.respond_text(handler, text, drip=self.delay / 40 if behaviour == "drip" else 0.0)

    def _flood(self, handler, request: dict, behaviour: str) -> None:
        body = self.openai_body(request, self.text) if self.kind == "openai" else \
            self.gemini_body(request, self.text)
        raw = json.dumps(body).encode() + (b"" if behaviour == "br" else b" " * 2_000_000)
        if behaviour == "flood":
            _send(handler, 200, None, raw=raw)
            return
        encoding = "gzip" if behaviour == "gzip-flood" else "br"
        _send(handler, 200, None, {"content-encoding": encoding},
              raw=gzip.compress(raw) if encoding == "gzip" else raw)

    def respond_text(self, handler, text: str, drip: float = 0.0) -> None:
        request = self.requests[-1]["body"]
        body = (self.openai_body(request, text) if self.kind == "openai"
                else self.gemini_body(request, text))
        if self.served is not None:
            body["model" if self.kind == "openai" else "modelVersion"] = self.served
        _send(handler, 200, body, drip=drip)

    @staticmethod
    def openai_body(request: dict, text: str | None, refusal: str | None = None,
                    shape: str = "ok") -> dict:
        n = 1 if shape == "one-choice" else request.get("n", 1) + 2 * (shape == "two-extra")
        logprobs = request.get("logprobs") and shape != "no-logprobs"
        choices = []
        for i in range(n):
            rank = n - i if shape == "worst-first" else i + 1
            tokens = [{"token": "x", "logprob": -0.1 * rank, "bytes": None, "top_logprobs": []}
                      for _ in range(5)]
            blocked = shape == "blocked" and i == 0  # the first choice filtered, the rest not
            choices.append({"index": i, "finish_reason": "content_filter" if blocked else "stop",
                            "message": {"role": "assistant", "content": None if blocked else text,
                                        "refusal": refusal},
                            "logprobs": {"content": tokens} if logprobs else None})
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                "model": request.get("model", "m"), "choices": choices,
                "usage": {"prompt_tokens": 120, "completion_tokens": 20 * n,
                          "total_tokens": 120 + 20 * n,
                          "prompt_tokens_details": {"audio_tokens": 10, "text_tokens": 110,
                                                    "cached_tokens": 0}}}

    @staticmethod
    def gemini_body(request: dict, text: str, shape: str = "ok") -> dict:
        n = request.get("generationConfig", {}).get("candidateCount", 1) + 2 * (shape == "two-extra")
        parts = [{"text": text}]
        if shape == "thoughts":
            parts.insert(0, {"text": "Thinking: the voice is loud.", "thought": True})
        candidates = [{"content": {"parts": parts, "role": "model"},
                       "finishReason": "STOP", "index": i, "avgLogprobs": -0.2} for i in range(n)]
        if shape == "blocked":  # every candidate stopped for safety before any text
            candidates = [{"finishReason": "SAFETY", "index": i} for i in range(n)]
        return {"candidates": candidates,
                "usageMetadata": {"promptTokenCount": 130, "candidatesTokenCount": 25 * n,
                                  "thoughtsTokenCount": 7, "totalTokenCount": 137 + 25 * n,
                                  "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 32},
                                                          {"modality": "TEXT", "tokenCount": 98}]}}


def _send(handler, status: int, payload, headers: dict | None = None, raw: bytes | None = None,
          content_type: str = "application/json", drip: float = 0.0):
    data = raw if raw is not None else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
        if not drip:
            handler.wfile.write(data)
            return
        for byte in data:  # one byte at a time, each inside any per-read timeout
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(drip)


class ForwardProxy(LoopbackServer):
    """An HTTP proxy on a free loopback port: forwards each request it is sent (absolute-form,
    as a client sends through a proxy) straight to its server and relays the answer; remembers
    the URLs it forwarded."""

    def __init__(self):
        self.forwarded: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                proxy.forwarded.append(self.path)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "proxy-connection", "connection")}
                request = urllib.request.Request(self.path, body, headers, method="POST")
                direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    answer = direct.open(request, timeout=30)
                except urllib.error.HTTPError as error:
                    answer = error
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)
