"""The total deadline per HTTP request: an answer still arriving past it is cut off (its stream
closed, the library's ReadTimeout raised); the transport and the stream close what they wrap;
``httpx`` serves where ``httpx2`` is not installed."""

import pytest

from harness.models import _deadline
from harness.models._deadline import deadline_transport, httpx_module


def _http_installed() -> bool:
    try:
        httpx_module()
    except ImportError:
        return False
    return True


needs_http = pytest.mark.skipif(not _http_installed(), reason="the api extra is not installed")


class Chunks:
    """An answer's body, arriving in pieces; remembers being closed."""

    def __init__(self, *chunks):
        self.chunks, self.closed = chunks, False

    def __iter__(self):
        yield from self.chunks

    def close(self):
        self.closed = True


class Transport:
    """The wrapped transport: answers with ``body``; remembers being closed."""

    def __init__(self, body):
        self.body, self.closed = body, False

    def handle_request(self, request):
        return httpx_module().Response(200, stream=self.body, request=request)

    def close(self):
        self.closed = True


def answer(seconds, body):
    transport = deadline_transport(seconds)
    transport.inner = Transport(body)
    httpx = httpx_module()
    return transport, transport.handle_request(httpx.Request("GET", "http://localhost/"))


@needs_http
def test_an_answer_within_the_deadline_arrives_whole_and_closing_closes_what_is_wrapped():
    body = Chunks(b"a", b"b")
    transport, response = answer(60, body)
    assert b"".join(response.stream) == b"ab" and not body.closed
    response.stream.close()
    transport.close()
    assert body.closed and transport.inner.closed


@needs_http
def test_an_answer_still_arriving_past_the_deadline_is_cut_off_and_its_stream_closed():
    body = Chunks(b"a", b"b")
    _, response = answer(-1, body)  # already past
    with pytest.raises(httpx_module().ReadTimeout, match=r"no complete answer within -1 s"):
        list(response.stream)
    assert body.closed


@needs_http
def test_an_answer_past_the_size_limit_is_cut_off_and_its_stream_closed(monkeypatch):
    monkeypatch.setattr(_deadline, "MAX_ANSWER_BYTES", 3)
    body = Chunks(b"ab", b"c", b"d")
    _, response = answer(60, body)
    received = []
    with pytest.raises(httpx_module().ReadError, match=r"the answer passed 2\.86102e-06 MiB "
                                                       r"\(the request's size limit\): cut off"):
        received.extend(response.stream)
    assert received == [b"ab", b"c"] and body.closed
    within = Chunks(b"ab", b"c")
    assert b"".join(answer(60, within)[1].stream) == b"abc" and not within.closed


def test_httpx_serves_where_httpx2_is_not_installed(monkeypatch):
    httpx = object()  # what an older SDK's environment has in its place

    def without_httpx2(name):
        if name == "httpx2":
            raise ImportError(name)
        return {"httpx": httpx}[name]

    monkeypatch.setattr(_deadline.importlib, "import_module", without_httpx2)
    assert httpx_module() is httpx
