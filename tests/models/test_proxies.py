"""The API models go through the proxy the environment names (``HTTPS_PROXY``, ``NO_PROXY``, ...),
as the SDKs' own clients do: the harness hands the SDKs a client with a transport of its own
(the deadline and the size limit), and httpx reads no proxy for such a client."""

import socket

import numpy as np
import pytest

from harness.models._deadline import proxy_for, shown_proxy

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.mark.parametrize("scheme, host, port, proxied", [
    ("https", "api.openai.com", 443, "http://p:1"), ("http", "api.openai.com", 80, "http://q:2"),
    ("https", "x.corp", 443, None), ("https", "corp", 443, None),  # the domain and below it
    ("https", "xcorp", 443, "http://p:1"),  # not a subdomain
    ("http", "localhost", 8000, None), ("https", "example.com", 8443, None),
    ("https", "example.com", 443, "http://p:1"),  # no_proxy names another port
    ("https", "::1", 443, None), ("https", "fe80::1", 443, None)])
def test_the_proxy_for_a_request_is_read_as_httpx_reads_the_environment(scheme, host, port,
                                                                         proxied):
    proxies = {"https": "http://p:1", "http": "q:2",
               "no": "localhost, .corp ,example.com:8443,[::1],fe80::1"}
    assert proxy_for(scheme, host, port, proxies) == proxied


def test_all_proxy_serves_every_scheme_and_a_star_in_no_proxy_none():
    assert proxy_for("https", "a", 443, {"all": "socks5://s:1"}) == "socks5://s:1"
    assert proxy_for("https", "a", 443, {"all": "socks5://s:1", "no": "*"}) is None
    assert proxy_for("https", "a", 443, {}) is None


def test_a_proxy_is_shown_without_its_credentials():
    assert shown_proxy("http://user:pw@proxy.corp:3128") == "http://proxy.corp:3128"
    assert shown_proxy("socks5://u:p@[fe80::1]:1080/") == "socks5://[fe80::1]:1080"
    assert shown_proxy("http://proxy.corp") == "http://proxy.corp"


@pytest.fixture
def through_proxy(monkeypatch):
    pytest.importorskip("openai", reason="the api extra is not installed")
    from tests.api_servers import ForwardProxy

    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        yield proxy


@pytest.mark.parametrize("bypassed", [False, True])
def test_both_sdks_requests_go_through_the_environment_s_proxy_unless_no_proxy_names_the_host(
        through_proxy, monkeypatch, bypassed):
    pytest.importorskip("google.genai", reason="the api extra is not installed")
    from harness.models import Decoding, Request, get_model
    from tests.api_servers import ScriptedServer

    if bypassed:
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    clip = np.zeros(1600, dtype=np.float32)
    with ScriptedServer("openai") as openai_server, ScriptedServer("gemini") as gemini_server:
        models = [get_model("gpt-4o", api_key="sk-test", base_url=openai_server.url + "/v1",
                            max_retries=0),
                  get_model("gemini-2.0-flash", api_key="AIzaTEST", base_url=gemini_server.url,
                            attempts=1)]
        answers = [m.generate([Request(clip, "the prompt", item_id="a")], Decoding())[0]
                   for m in models]
    assert [a.error for a in answers] == [None, None]
    assert [a.candidates[0].text[:10] for a in answers] == 2 * ['{"Anger": ']
    forwarded = [url.split("/")[2] for url in through_proxy.forwarded]
    servers = [s.url.removeprefix("http://") for s in (openai_server, gemini_server)]
    assert forwarded == ([] if bypassed else servers)


def test_the_total_deadline_holds_through_the_proxy(through_proxy):
    """The proxy waits on a server dripping its headers and sends nothing meanwhile: the 1 s
    deadline cuts the request off, not the 3 s per-read timeout."""
    from harness.models import Decoding, Request, get_model
    from tests.api_servers import ScriptedServer

    with ScriptedServer("openai", ["header-drip"], delay=40.0) as server:
        model = get_model("gpt-4o", api_key="sk-test", base_url=server.url + "/v1",
                          max_retries=0, timeout=3, deadline_s=1.0)
        [answer] = model.generate([Request(np.zeros(1600, dtype=np.float32), "p", item_id="a")],
                                  Decoding())
    assert "no complete answer within 1 s (the request's total deadline)" in answer.error
    assert len(through_proxy.forwarded) == 1


def test_a_proxy_that_cannot_be_reached_is_named_in_the_error_without_its_credentials(
        through_proxy, monkeypatch):
    from harness.models import Decoding, Request, get_model

    with socket.socket() as closed:  # a port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://user:s3cret@127.0.0.1:{port}")
    model = get_model("gpt-4o", api_key="sk-test", base_url="http://api.example/v1",
                      max_retries=0)
    [answer] = model.generate([Request(np.zeros(1600, dtype=np.float32), "p", item_id="a")],
                              Decoding())
    assert f"(through the proxy http://127.0.0.1:{port} that the environment names)" in answer.error
    assert "ConnectError" in answer.error and "s3cret" not in answer.error
