"""The total deadline per HTTP request: an answer still arriving past it is cut off (its stream
closed, the library's ReadTimeout raised); the transport and the stream close what they wrap;
the size limit holds for a compressed answer as inflated; ``httpx`` serves where ``httpx2`` is
not installed."""

import gzip
import tracemalloc
import zlib

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
        self.request = request
        return httpx_module().Response(200, stream=self.body, request=request,
                                       headers=self.headers)

    headers: dict = {}

    def close(self):
        self.closed = True


def answer(seconds, body, encoding=None):
    transport = deadline_transport(seconds)
    transport.inner = Transport(body)
    if encoding:
        transport.inner.headers = {"content-encoding": encoding, "content-length": "1"}
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


def pieces(data, size=1000):
    return Chunks(*(data[i:i + size] for i in range(0, len(data), size)))


@needs_http
@pytest.mark.parametrize("encoding, encode", [
    ("gzip", gzip.compress), ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b, wbits=-zlib.MAX_WBITS)),  # raw, as some servers send
    ("deflate, gzip", lambda b: gzip.compress(zlib.compress(b))), ("identity, gzip", gzip.compress)])
def test_a_compressed_answer_is_inflated_here_once_and_asked_for_as_gzip_or_deflate(encoding,
                                                                                    encode):
    text = b'{"Anger": 0.5, "Sadness": 0.5}' * 500
    transport, response = answer(60, pieces(encode(text)), encoding)
    assert transport.inner.request.headers["accept-encoding"] == "gzip, deflate"
    assert "content-encoding" not in response.headers  # the client does not inflate it again
    assert "content-length" not in response.headers  # the wire's length, not the answer's
    assert response.read() == text


@needs_http
def test_a_compression_bomb_is_cut_off_at_the_limit_before_it_is_inflated(monkeypatch):
    monkeypatch.setattr(_deadline, "MAX_ANSWER_BYTES", 2**20)
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of whitespace in about 50 kB
    body = pieces(bomb, 2**16)
    _, response = answer(60, body, "gzip")
    inflated = 0
    tracemalloc.start()
    try:
        with pytest.raises(httpx_module().ReadError, match=r"the answer passed 1 MiB"):
            for chunk in response.stream:
                inflated += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert inflated <= 2**20 and body.closed
    assert peak < 2**20  # inflated a piece at a time, never the whole bomb at once


@needs_http
def test_a_raw_flood_after_a_compressed_answer_is_cut_off_too(monkeypatch):
    monkeypatch.setattr(_deadline, "MAX_ANSWER_BYTES", 2**20)
    body = pieces(gzip.compress(b"{}") + b"\0" * 2_000_000, 2**16)  # past the gzip's end
    _, response = answer(60, body, "gzip")
    with pytest.raises(httpx_module().ReadError, match=r"the answer passed 1 MiB"):
        list(response.stream)
    assert body.closed


@needs_http
def test_a_damaged_or_unasked_encoding_is_a_decoding_error_naming_it():
    body = pieces(b"\x1f\x8b" + b"not gzip at all" * 10)
    _, response = answer(60, body, "gzip")
    with pytest.raises(httpx_module().DecodingError, match=r"the answer's gzip encoding is damaged"):
        list(response.stream)
    assert body.closed
    body = pieces(b"{}")
    with pytest.raises(httpx_module().DecodingError,
                       match=r"encoded as 'br', which was not asked for \(gzip, deflate was\)"):
        answer(60, body, "br")
    assert body.closed


def test_httpx_serves_where_httpx2_is_not_installed(monkeypatch):
    httpx = object()  # what an older SDK's environment has in its place

    def without_httpx2(name):
        if name == "httpx2":
            raise ImportError(name)
        return {"httpx": httpx}[name]

    monkeypatch.setattr(_deadline.importlib, "import_module", without_httpx2)
    assert httpx_module() is httpx
