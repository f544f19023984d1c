"""A total deadline and a size limit per HTTP request for the API SDKs (their own timeouts
apply per read, and nothing bounds an answer's size).

A server that sends its answer one byte at a time resets a per-read timeout with every byte: one
request once held a concurrency slot for 43 s under ``timeout=3``. The SDKs accept an HTTP client
of their own (``httpx2``, or ``httpx``); :func:`deadline_transport` wraps its transport so that an
answer still arriving ``seconds`` after the request was sent raises the library's
``ReadTimeout``, which the SDKs retry as any timeout: its body here, its status line and headers
on the connection (:mod:`harness.models._wire_deadline`).
An answer whose body passes :data:`MAX_ANSWER_BYTES` (a proxy streaming without end, fast) is
cut off there with the library's ``ReadError``, before it fills the memory of a whole run. The
limit holds for the answer as decoded: a compressed answer (gzip or deflate, all the transport
asks for) is inflated here, a bounded piece at a time, so that a few kilobytes on the wire cannot
become gigabytes in memory; an encoding not asked for is refused with ``DecodingError``.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

from harness.models._wire_deadline import Due, bound_connections

MAX_ANSWER_BYTES = 64 * 2**20  # five candidates' log-probabilities for 512 tokens: ~5 MB
ACCEPTED_ENCODINGS = "gzip, deflate"  # what this transport inflates itself, under the limit
_PIECE = 2**16  # the most one inflation step may write


def httpx_module() -> Any:
    """The HTTP library the installed SDKs use: ``httpx2`` where it is installed, else ``httpx``."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def deadline_transport(seconds: float) -> Any:
    """An HTTP transport whose every request must be answered in full within ``seconds`` and
    :data:`MAX_ANSWER_BYTES`."""
    return _library_types(httpx_module())[1](seconds)


@functools.cache
def _library_types(httpx: Any) -> tuple[type, type]:
    """The answer stream and the transport as ``httpx``'s own types (its client checks that a
    response's stream is its ``SyncByteStream``): each mixin beside the library's base class."""
    stream = type("DeadlineStream", (_BoundedAnswer, httpx.SyncByteStream), {"httpx": httpx})
    transport = type("DeadlineTransport", (_DeadlineTransport, httpx.BaseTransport),
                     {"httpx": httpx, "stream_type": stream})
    return stream, transport


class _BoundedAnswer:
    """An answer's body, read by its deadline and within :data:`MAX_ANSWER_BYTES` as inflated."""

    httpx: Any  # the library, set by _library_types

    def __init__(self, inner: Any, due: Due, request: Any, encodings: list[str]) -> None:
        self.inner, self.deadline, self.message = inner, due.at, due.message()
        self.request, self.encodings = request, encodings

    def __iter__(self) -> Iterator[bytes]:
        limit = MAX_ANSWER_BYTES  # read now: a test may lower it
        try:  # the limit holds for the bytes received and for the answer they inflate to
            yield from self._within(limit, inflated(self._within(limit, self._on_time()),
                                                    self.encodings))
        except zlib.error as exc:
            self.inner.close()
            raise self.httpx.DecodingError(f"the answer's {'+'.join(self.encodings)} encoding is "
                                           f"damaged: {exc}", request=self.request) from None
        except self.httpx.HTTPError:  # what is left of the answer is not read
            self.inner.close()
            raise

    def _on_time(self) -> Iterator[bytes]:
        for chunk in self.inner:
            if time.monotonic() > self.deadline:
                raise self.httpx.ReadTimeout(self.message, request=self.request)
            yield chunk

    def _within(self, limit: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise self.httpx.ReadError(f"the answer passed {limit / 2**20:g} MiB (the "
                                           "request's size limit): cut off", request=self.request)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _DeadlineTransport:
    """Each request straight to its server or through the proxy the environment names for it, its
    connection bounded by its deadline (:class:`Due`) and its answer by :class:`_BoundedAnswer`."""

    httpx: Any  # the library and the stream type, set by _library_types
    stream_type: type

    def __init__(self, seconds: float) -> None:
        self.due = Due(seconds)  # the status line and headers too, on the connection
        self.inner = self._bounded(self.httpx.HTTPTransport())  # straight to the server
        self.proxies = urllib.request.getproxies_environment()  # HTTPS_PROXY, NO_PROXY, ...
        self.proxied: dict[str, Any] = {}  # one transport a proxy, made when first needed
        self.lock = threading.Lock()

    def _bounded(self, transport: Any) -> Any:
        bound_connections(transport, self.due)
        return transport

    def _route(self, url: Any) -> tuple[Any, str | None]:
        """The transport to ``url`` and its proxy: the one the environment names for it, as the
        SDKs' own clients do (a client given a transport of its own reads none), else none
        (direct)."""
        port = url.port or {"http": 80, "https": 443}.get(url.scheme)
        proxy = proxy_for(url.scheme, url.host, port, self.proxies)
        if proxy is None:
            return self.inner, None
        with self.lock:
            if proxy not in self.proxied:
                self.proxied[proxy] = self._bounded(
                    self.httpx.HTTPTransport(proxy=self.httpx.Proxy(proxy)))
            return self.proxied[proxy], proxy

    def handle_request(self, request: Any) -> Any:
        httpx = self.httpx
        self.due.start()
        request.headers["accept-encoding"] = ACCEPTED_ENCODINGS
        transport, proxy = self._route(request.url)
        try:
            response = transport.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
            if proxy is None:
                raise
            raise type(exc)(f"{exc} (through the proxy {shown_proxy(proxy)} that the "
                            "environment names)", request=request) from exc
        encodings = _encodings(httpx, response, request)
        response.stream = self.stream_type(response.stream, self.due, request, encodings)
        return response

    def close(self) -> None:
        for transport in [self.inner, *self.proxied.values()]:
            transport.close()


def proxy_for(scheme: str, host: str, port: int | None, proxies: dict[str, str]) -> str | None:
    """The proxy ``proxies`` (``urllib.request.getproxies_environment()``) name for a request
    to ``scheme://host:port``, as httpx reads them: none where ``no_proxy`` is ``*`` or names the
    host (``example.com`` and ``.example.com`` stand for it and its subdomains, ``host:port``
    and ``[::1]:port`` for that port only), else the scheme's own proxy or ``all_proxy``; a
    proxy without a scheme is taken as ``http://``."""
    entries = [e.strip().lower() for e in proxies.get("no", "").split(",") if e.strip()]
    if any(e == "*" or _names(e, host.lower(), port) for e in entries):
        return None
    proxy = proxies.get(scheme) or proxies.get("all")
    return None if not proxy else proxy if "://" in proxy else f"http://{proxy}"


def _names(entry: str, host: str, port: int | None) -> bool:
    """Whether a ``no_proxy`` entry names ``host`` (on ``port``)."""
    if entry.startswith("["):  # an IPv6 address, perhaps with a port
        name, _, rest = entry[1:].partition("]")
        wanted = rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, _, wanted = entry.partition(":")
    else:  # a name, or a bare IPv6 address
        name, wanted = entry, ""
    name = name.lstrip(".")
    return bool(name) and wanted in ("", str(port)) and (host == name or host.endswith("." + name))


def shown_proxy(proxy: str) -> str:
    """``proxy`` as an error may show it: its scheme, host and port, no credentials."""
    parts = urllib.parse.urlsplit(proxy)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _encodings(httpx: Any, response: Any, request: Any) -> list[str]:
    """The answer's content encodings, taken over from the client: the stream inflates them
    under the limit (``DecodingError`` for one not asked for)."""
    encodings = [e.strip().lower() for e in response.headers.get_list(
        "content-encoding", split_commas=True) if e.strip().lower() != "identity"]
    refused = [e for e in encodings if e not in ("gzip", "deflate")]
    if refused:
        response.stream.close()  # the connection let go, the answer unread
        raise httpx.DecodingError(f"the answer came encoded as {', '.join(refused)!r}, which "
                                  f"was not asked for ({ACCEPTED_ENCODINGS} was)", request=request)
    if encodings:  # the client must not inflate it again
        del response.headers["content-encoding"]
        response.headers.pop("content-length", None)
    return encodings


def inflated(chunks: Iterator[bytes], encodings: list[str]) -> Iterator[bytes]:
    """``chunks`` with ``encodings`` (gzip, deflate, in the order applied) undone, each piece
    written at most :data:`_PIECE` bytes at a time, so that the reader's size limit stops a
    compression bomb before it is inflated."""
    stream = chunks
    for encoding in encodings[::-1]:  # the last applied is the first undone
        stream = _inflate_one(stream, encoding)
    return stream


def _inflate_one(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    window = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    inflater, first = zlib.decompressobj(window), True
    for chunk in chunks:
        if first and encoding == "deflate" and chunk:  # a raw deflate stream, as some servers send
            try:
                zlib.decompressobj(window).decompress(chunk, 1)
            except zlib.error:
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        first = first and not chunk
        while chunk and not inflater.eof:
            yield inflater.decompress(chunk, _PIECE)
            chunk = inflater.unconsumed_tail
    while not inflater.eof and (rest := inflater.decompress(b"", _PIECE)):
        yield rest
