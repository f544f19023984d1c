"""The request's deadline on its connection: each connect, read, write and TLS handshake gets at
most what is left of it, one past it is named as the deadline's, the deadline is the thread's
own, and the real transport's pool is the one wrapped."""

import threading
import time
import types

import pytest

from harness.models._deadline import httpx_module
from harness.models._wire_deadline import Due, DueBackend, DueStream, bound_connections


class ReadTimeout(Exception):
    pass


class WriteTimeout(Exception):
    pass


class ConnectTimeout(Exception):
    pass


CORE = types.SimpleNamespace(ReadTimeout=ReadTimeout, WriteTimeout=WriteTimeout,
                             ConnectTimeout=ConnectTimeout)


class Wire:
    """A connection (and its backend) that records the timeouts it is given; ``slow``: each call
    waits out its timeout and raises the library's own timeout, as a socket would."""

    def __init__(self, slow=False):
        self.slow, self.timeouts, self.closed = slow, [], False

    def _take(self, timeout, error):
        self.timeouts.append(timeout)
        if self.slow:
            time.sleep(timeout)
            raise error("timed out")

    def read(self, max_bytes, timeout=None):
        self._take(timeout, ReadTimeout)
        return b"x" * max_bytes

    def write(self, buffer, timeout=None):
        self._take(timeout, WriteTimeout)

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        self._take(timeout, ConnectTimeout)
        return Wire(self.slow)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self._take(timeout, ConnectTimeout)
        return Wire(self.slow)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        self._take(timeout, ConnectTimeout)
        return Wire(self.slow)

    def get_extra_info(self, info):
        return f"info {info}"

    def close(self):
        self.closed = True


def started(seconds):
    due = Due(seconds)
    due.start()
    return due


def test_each_call_gets_at_most_what_is_left_of_the_deadline():
    wire = Wire()
    stream = DueStream(wire, started(30), CORE)
    assert stream.read(3, timeout=600) == b"xxx"
    stream.write(b"abc", timeout=5)
    stream.read(1)  # no timeout of its own: the deadline's
    assert 29 < wire.timeouts[0] <= 30 and wire.timeouts[1] == 5 and 29 < wire.timeouts[2] <= 30
    assert stream.get_extra_info("socket") == "info socket"
    stream.close()
    assert wire.closed


@pytest.mark.parametrize("call, error", [
    (lambda s: s.read(1, timeout=5), ReadTimeout), (lambda s: s.write(b"a", timeout=5), WriteTimeout),
    (lambda s: s.start_tls(None, "h", timeout=5), ConnectTimeout)])
def test_a_call_past_the_deadline_is_refused_naming_it(call, error):
    wire = Wire()
    with pytest.raises(error, match=r"^no complete answer within -1 s \(the request's total "
                                    r"deadline\)$"):
        call(DueStream(wire, started(-1), CORE))
    assert wire.timeouts == []  # not even started


def test_a_call_cut_off_by_the_deadline_is_named_as_the_deadline_s_and_one_by_its_own_timeout_not():
    slow = DueStream(Wire(slow=True), started(0.05), CORE)
    with pytest.raises(ReadTimeout, match=r"within 0\.05 s \(the request's total deadline\)"):
        slow.read(1, timeout=5)
    slow = DueStream(Wire(slow=True), started(30), CORE)
    with pytest.raises(ReadTimeout, match=r"^timed out$"):  # its own per-read timeout ran out
        slow.read(1, timeout=0.01)


def test_a_tls_handshake_and_a_connection_keep_the_deadline():
    backend = DueBackend(Wire(), started(30), CORE)
    for stream in (backend.connect_tcp("h", 443, timeout=600),
                   backend.connect_unix_socket("/s", timeout=600),
                   backend.connect_tcp("h", 443).start_tls(None, "h", timeout=600)):
        assert isinstance(stream, DueStream)
        stream.read(1, timeout=600)
        assert 29 < stream.inner.timeouts[-1] <= 30
    assert all(29 < t <= 30 for t in backend.inner.timeouts)
    with pytest.raises(ConnectTimeout, match="total deadline"):
        DueBackend(Wire(), started(-1), CORE).connect_tcp("h", 443, timeout=600)


class Unresolved(Wire):
    """A backend whose connecting hangs where no socket timeout reaches (a name's lookup that the
    resolver never answers) until ``answer`` is set, then connects; or raises ``failure``."""

    def __init__(self, failure=None):
        super().__init__()
        self.answer, self.failure, self.made = threading.Event(), failure, []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.answer.wait(30)
        if self.failure is not None:
            raise self.failure
        self.made.append(Wire())
        return self.made[-1]


def test_a_name_s_lookup_that_never_ends_is_cut_off_at_the_deadline_and_its_late_connection_closed():
    backend = DueBackend(Unresolved(), started(0.2), CORE)
    start = time.monotonic()
    with pytest.raises(ConnectTimeout, match=r"^no complete answer within 0\.2 s \(the request's "
                                             r"total deadline\)$"):
        backend.connect_tcp("api.example.com", 443, timeout=600)
    assert 0.15 < time.monotonic() - start < 2
    backend.inner.answer.set()  # the lookup answers at last: the connection made then is let go
    for _ in range(200):
        if backend.inner.made and backend.inner.made[0].closed:
            break
        time.sleep(0.01)
    assert backend.inner.made[0].closed


def test_a_connection_s_own_timeout_before_the_deadline_is_named_as_its_own():
    backend = DueBackend(Unresolved(), started(30), CORE)
    with pytest.raises(ConnectTimeout, match=r"^no connection to api\.example\.com:443 within "
                                             r"0\.1 s \(the name's lookup or the connection"):
        backend.connect_tcp("api.example.com", 443, timeout=0.1)
    backend.inner.answer.set()


def test_a_connection_made_or_refused_in_time_is_handed_back_as_it_came():
    made = DueBackend(Unresolved(), started(30), CORE)
    made.inner.answer.set()
    stream = made.connect_tcp("api.example.com", 443, timeout=600)
    assert stream.inner is made.inner.made[0] and not stream.inner.closed
    refused = DueBackend(Unresolved(ConnectionRefusedError("refused")), started(30), CORE)
    refused.inner.answer.set()
    with pytest.raises(ConnectionRefusedError, match="refused"):
        refused.connect_tcp("api.example.com", 443, timeout=600)


def test_the_deadline_is_the_thread_s_own_request_s():
    due = started(30)
    seen = []
    other = threading.Thread(target=lambda: seen.append(due.at))
    other.start()
    other.join()
    assert seen == [float("inf")] and due.at < time.monotonic() + 30


def test_the_real_transport_s_pool_is_wrapped_and_one_without_a_pool_is_said():
    try:
        transport = httpx_module().HTTPTransport()
    except ImportError:
        pytest.skip("the api extra is not installed")
    due = Due(30)
    bound_connections(transport, due)
    backend = transport._pool._network_backend
    assert isinstance(backend, DueBackend) and backend.due is due
    assert backend.core.ReadTimeout.__module__.split(".")[0] in ("httpcore", "httpcore2")
    with pytest.warns(UserWarning, match="headers are bounded by the per-read timeout only"):
        bound_connections(object(), due)
