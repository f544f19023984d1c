"""A request's total deadline down on its connection: every connect, read and write ends by it.

The SDKs' ``timeout`` bounds each read, so a server that sends its status line and headers one
byte at a time resets it with every byte and holds the request (h11 reads up to 16 kB of
headers) for hours; the body is bounded by :mod:`harness.models._deadline`'s stream, but nothing
above the connection sees the headers arrive. Here the connection pool's network backend is
wrapped: each call on a connection gets at most what is left of the deadline of the request its
thread is making (the SDKs' clients send a request and read its answer on one thread), and one
that would start, or is cut off, past it raises httpcore's ``ReadTimeout`` (``ConnectTimeout``,
``WriteTimeout``) with the deadline named, which the HTTP library hands the SDKs as its own.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
import warnings
from typing import Any


def deadline_message(seconds: float) -> str:
    """What a request cut off at its total deadline of ``seconds`` says."""
    return f"no complete answer within {seconds:g} s (the request's total deadline)"


class Due(threading.local):
    """The total deadline (``time.monotonic()`` seconds) of the request this thread is making."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.at = seconds, math.inf

    def start(self) -> None:
        """A request starts on this thread now."""
        self.at = time.monotonic() + self.seconds

    def message(self) -> str:
        return deadline_message(self.seconds)

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """``timeout`` cut to what is left of the deadline; ``error`` where nothing is."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise error(self.message())
        return left if timeout is None else min(timeout, left)

    def call(self, error: type[Exception], timeout: float | None, run: Any, *args: Any) -> Any:
        """``run(*args, timeout)`` within the deadline, a timeout past it named as the deadline's."""
        try:
            return run(*args, self.left(timeout, error))
        except error:
            if time.monotonic() >= self.at:
                raise error(self.message()) from None
            raise


class DueStream:
    """A connection whose reads and writes end by its thread's request's deadline."""

    def __init__(self, inner: Any, due: Due, core: Any) -> None:
        self.inner, self.due, self.core = inner, due, core

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.due.call(self.core.ReadTimeout, timeout, self.inner.read, max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.due.call(self.core.WriteTimeout, timeout, self.inner.write, buffer)

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> DueStream:
        return DueStream(self.due.call(self.core.ConnectTimeout, timeout, self.inner.start_tls,
                                       ssl_context, server_hostname), self.due, self.core)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class DueBackend:
    """A network backend whose connections are :class:`DueStream`."""

    def __init__(self, inner: Any, due: Due, core: Any) -> None:
        self.inner, self.due, self.core = inner, due, core

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> DueStream:
        """A connection to ``host`` made by the deadline, the name's lookup included: no socket
        timeout bounds the lookup (a resolver that does not answer holds it for as long as the
        system's resolver tries), so the connection is made on a thread of its own, waited
        for until the deadline, and closed when it comes after it."""
        def connect(wait: float) -> Any:
            connecting = _Connecting(lambda: self.inner.connect_tcp(host, port, wait,
                                                                    local_address, socket_options))
            return connecting.result(wait, self.core.ConnectTimeout, f"{host}:{port}")

        stream = self.due.call(self.core.ConnectTimeout, timeout, connect)
        return DueStream(stream, self.due, self.core)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> DueStream:
        stream = self.due.call(self.core.ConnectTimeout, timeout,
                               lambda t: self.inner.connect_unix_socket(path, t, socket_options))
        return DueStream(stream, self.due, self.core)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _Connecting:
    """A connection being made on a daemon thread of its own (one that never ends keeps no run
    from exiting); the stream it makes after the caller stopped waiting is closed."""

    def __init__(self, connect: Any) -> None:
        self.lock, self.done, self.abandoned = threading.Lock(), threading.Event(), False
        self.stream: Any = None
        self.error: BaseException | None = None
        threading.Thread(target=self._run, args=(connect,), daemon=True,
                         name="harness-connect").start()

    def _run(self, connect: Any) -> None:
        try:
            stream = connect()
        except BaseException as exc:  # handed to the caller, who raises it
            stream, self.error = None, exc
        with self.lock:
            self.stream = stream
            self.done.set()
            if self.abandoned and stream is not None:
                stream.close()

    def result(self, wait: float, error: type[Exception], where: str) -> Any:
        """The connection, or ``error`` where it is not made (its name not looked up) within
        ``wait`` seconds: the caller then names the deadline (:meth:`Due.call`)."""
        self.done.wait(wait)
        with self.lock:
            if not self.done.is_set():
                self.abandoned = True
                raise error(f"no connection to {where} within {wait:.3g} s (the name's lookup "
                            "or the connection itself)")
        if self.error is not None:
            raise self.error
        return self.stream


def bound_connections(transport: Any, due: Due) -> None:
    """Wrap the network backend of ``transport``'s connection pool (httpx's ``HTTPTransport``,
    before its first request) so that its connections keep ``due``; a warning where the pool has
    none to wrap (an HTTP library other than those tried: headers then bounded per read only)."""
    pool: Any = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        warnings.warn("the HTTP library's connection pool has no network backend to bound: an "
                      "answer's headers are bounded by the per-read timeout only", stacklevel=2)
        return
    core = importlib.import_module(type(pool).__module__.split(".")[0])  # httpcore or httpcore2
    pool._network_backend = DueBackend(backend, due, core)
