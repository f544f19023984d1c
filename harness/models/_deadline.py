"""A total deadline and a size limit per HTTP request for the API SDKs (their own timeouts
apply per read, and nothing bounds an answer's size).

A server that sends its answer one byte at a time resets a per-read timeout with every byte: one
request once held a concurrency slot for 43 s under ``timeout=3``. The SDKs accept an HTTP client
of their own (``httpx2``, or ``httpx``); :func:`deadline_transport` wraps its transport so that an
answer whose body is still arriving ``seconds`` after the request was sent raises the library's
``ReadTimeout``, which the SDKs retry as any timeout. (Headers are bounded by the per-read timeout.)
An answer whose body passes :data:`MAX_ANSWER_BYTES` (a proxy streaming without end, fast) is
cut off there with the library's ``ReadError``, before it fills the memory of a whole run.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

MAX_ANSWER_BYTES = 64 * 2**20  # five candidates' log-probabilities for 512 tokens: ~5 MB


def httpx_module() -> Any:
    """The HTTP library the installed SDKs use: ``httpx2`` where it is installed, else ``httpx``."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def deadline_transport(seconds: float) -> Any:
    """An HTTP transport whose every request must be answered in full within ``seconds`` and
    :data:`MAX_ANSWER_BYTES`."""
    httpx = httpx_module()

    class DeadlineStream(httpx.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, deadline: float, request: Any) -> None:
            self.inner, self.deadline, self.request = inner, deadline, request

        def __iter__(self):
            received, limit = 0, MAX_ANSWER_BYTES  # read now: a test may lower it
            for chunk in self.inner:
                received += len(chunk)
                if time.monotonic() > self.deadline:
                    self.inner.close()
                    raise httpx.ReadTimeout(f"no complete answer within {seconds:g} s (the "
                                            "request's total deadline)", request=self.request)
                if received > limit:
                    self.inner.close()
                    raise httpx.ReadError(f"the answer passed {limit / 2**20:g} MiB (the "
                                          "request's size limit): cut off", request=self.request)
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class DeadlineTransport(httpx.BaseTransport):  # type: ignore[name-defined]
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            deadline = time.monotonic() + seconds
            response = self.inner.handle_request(request)
            response.stream = DeadlineStream(response.stream, deadline, request)
            return response

        def close(self) -> None:
            self.inner.close()

    return DeadlineTransport()
