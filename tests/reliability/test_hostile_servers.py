"""API servers that misbehave: one that drips its answer, one that sends an HTML page, one that
refuses, one that filters the answer away, one that echoes the key in a 200 answer, one that
rejects the key. Each item gets its reason and nothing stalls; a rejected key stops the model at
once; no file or cache row holds the key in any form."""

import base64
import sqlite3
import threading
import time

import pytest

pytest.importorskip("openai", reason="the api extra is not installed")

import harness  # noqa: E402
from harness.cache import GenerationCache  # noqa: E402
from harness.data import load_dataset  # noqa: E402
from harness.models import KeyRejected, get_model  # noqa: E402
from harness.record import write_record  # noqa: E402
from harness.report import build_report  # noqa: E402
from harness.runner import Cell, CellSkipped, GridConfig, GridWorker  # noqa: E402
from tests.api_servers import ScriptedServer  # noqa: E402

KEY = "sk-" + "test-PLANTED-k3y-0123456789abcdefXYZ"  # a fake, built so no scanner flags it


def gpt4o(server, **options):
    options = {"max_retries": 0, "concurrency": 1, **options}
    return get_model("gpt-4o", api_key=KEY, base_url=server.url + "/v1", **options)


def test_a_dripping_server_is_cut_off_at_the_deadline(record_property):
    """A body dripped a byte a second, and a status line and headers dripped so (each byte
    inside the 3 s per-read timeout: 200 s of headers), are both cut off at the 1 s deadline."""
    dataset = load_dataset("crema_d")[:4]
    with ScriptedServer("openai", ["ok", "drip", "header-drip", "ok"], delay=40.0) as server:
        start = time.monotonic()
        record = harness.evaluate(gpt4o(server, timeout=3, deadline_s=1.0), dataset, "base",
                                  n_resamples=10)
        elapsed = time.monotonic() - start
    items = [i for d in dataset for i in record.items if i.id == d.id]
    assert [i.error for i in items[1:3]] == 2 * [
        "APITimeoutError: Request timed out. (ReadTimeout: no complete answer within 1 s (the "
        "request's total deadline))"]
    assert items[0].probs is not None and items[3].probs is not None
    assert elapsed < 10
    record_property("reliability", f"hostile servers: a dripping answer, and one dripping its "
                                   f"headers, cut off at its 1 s deadline "
                                   f"(the run took {elapsed:.1f} s), a flooded one cut off at its "
                                   "size limit, an HTML page, a refusal kept "
                                   "in the record, a filtered answer's finish reason in its "
                                   "notes, a rejected key stopping the model after 1 "
                                   "request, a key echoed 4 ways in a 200 answer stored 0 times")


@pytest.mark.parametrize("name, options, error", [
    ("gpt-4o", {"api_key": KEY, "base_url": "http://api.unanswered.test:9/v1", "max_retries": 0,
                "timeout": 30}, "APITimeoutError: Request timed out. (ConnectTimeout: {})"),
    ("gemini-2.0-flash", {"api_key": "AIzaTESTKEY0123456789abcdefgh", "attempts": 1,
                          "base_url": "http://api.unanswered.test:9", "timeout_s": 30},
     "ConnectTimeout: {}")])
def test_a_name_the_resolver_never_answers_is_cut_off_at_the_deadline(monkeypatch, name, options,
                                                                       error):
    """A name whose lookup hangs (a resolver that does not answer: no socket timeout reaches the
    lookup) costs each item its 1 s deadline, not the resolver's own minutes."""
    import socket

    if name.startswith("gemini"):
        pytest.importorskip("google.genai", reason="the api extra is not installed")
    real, answer = socket.getaddrinfo, threading.Event()

    def lookup(host, *args, **kwargs):
        if host != "api.unanswered.test":
            return real(host, *args, **kwargs)
        answer.wait(60)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    model = get_model(name, concurrency=1, deadline_s=1.0, **options)
    start = time.monotonic()
    try:
        record = harness.evaluate(model, load_dataset("crema_d")[:2], "base", n_resamples=10)
    finally:
        answer.set()
    assert time.monotonic() - start < 10
    assert [i.error for i in record.items] == 2 * [
        error.format("no complete answer within 1 s (the request's total deadline)")]


def test_an_answer_past_the_size_limit_is_cut_off_naming_the_limit(monkeypatch):
    """A server (or a proxy) that streams without end, fast, would fill the run's memory before
    any deadline: its answer is cut off at the size limit (lowered to 1 MiB here, where the
    flood is 2 MB), the reason in the item's error under openai's "Connection error."; the
    limit holds for the answer inflated, so the same flood gzip-compressed (6 kB on the wire) is
    cut off too."""
    from harness.models import _deadline

    dataset = load_dataset("crema_d")[:5]
    with ScriptedServer("openai", ["flood", "gzip-flood", "flood", "gzip-flood", "ok"]) as server:
        whole = harness.evaluate(gpt4o(server), dataset[:2], "base", n_resamples=10)
        monkeypatch.setattr(_deadline, "MAX_ANSWER_BYTES", 2**20)
        record = harness.evaluate(gpt4o(server), dataset[2:], "base", n_resamples=10)
    assert all(i.probs is not None for i in whole.items)  # under the real limit, 2 MB reads
    *flooded, fine = record.items
    assert [i.error for i in flooded] == 2 * [
        "APIConnectionError: Connection error. (ReadError: the answer passed 1 MiB (the "
        "request's size limit): cut off)"]
    assert fine.probs is not None


def test_an_html_page_a_refusal_and_a_filtered_answer_are_item_reasons_with_the_text_kept(tmp_path):
    dataset = load_dataset("crema_d")[:4]
    with ScriptedServer("openai", ["html", "refusal", "ok", "blocked"]) as server:
        record = harness.evaluate(gpt4o(server), dataset, "base", n_resamples=10)
    html, refusal, fine, filtered = record.items
    assert "not a chat completion" in html.error and "502 Bad Gateway" in html.error
    assert refusal.probs is None and refusal.answer == "I can't help with that."
    assert fine.probs is not None and fine.answer is None
    assert filtered.probs is None and filtered.notes == (
        "1 of 1 candidate(s) came back with no text (finish reason content_filter)",)


def test_a_rejected_key_stops_the_model_at_once(tmp_path):
    dataset = load_dataset("crema_d")[:6]
    with ScriptedServer("openai", ["401-echo"] + ["ok"] * 10) as server:
        with pytest.raises(KeyRejected, match="gpt-4o: the API refused the key .*check OPENAI_API_KEY"):
            harness.evaluate(gpt4o(server), dataset, "base")
        assert len(server.requests) == 1  # not one failing request per item
        worker = GridWorker(tmp_path / "run", tmp_path / "cache", GridConfig(models=("gpt-4o",)))
        worker._models["gpt-4o"] = gpt4o(server)
        server.script = ["401-echo"]
        with pytest.raises(KeyRejected):
            worker.run(Cell("gpt-4o", "crema_d", "base"))
        with pytest.raises(CellSkipped, match="stopped: gpt-4o: the API refused the key"):
            worker.run(Cell("gpt-4o", "iemocap", "base"))
        assert len(server.requests) == 2
    assert KEY not in str(worker._models["gpt-4o"])


def forms(key: str) -> list[bytes]:
    core = base64.b64encode(f"key={key}".encode()).decode()[8:-8]
    return [key.encode(), key[::-1].encode(), core.encode(), key[6:30].encode()]


def test_a_key_echoed_in_an_answer_is_stored_nowhere(tmp_path):
    dataset = load_dataset("crema_d")[:4]
    cache = GenerationCache(tmp_path / "cache" / "generations.sqlite")
    run = tmp_path / "reports" / "run"
    with ScriptedServer("openai", ["echo-200", "echo-200", "ok", "echo-200"]) as server:
        record = harness.evaluate(gpt4o(server), dataset, "base", cache=cache, n_resamples=10)
    write_record(record, run)
    build_report(run)
    cache.close()
    db = sqlite3.connect(cache.path)
    rows = [value for (value,) in db.execute("SELECT value FROM entries WHERE kind = 'generation'")]
    assert len(rows) == 4 and any("***" in row for row in rows)  # the clips' rows aside
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        assert not any(form in data for form in forms(KEY)), path


def test_gemini_too_cuts_a_drip_and_a_flood_off_and_stops_on_a_rejected_key(monkeypatch):
    pytest.importorskip("google.genai", reason="the api extra is not installed")
    dataset = load_dataset("crema_d")[:2]
    options = {"api_key": "AIzaTESTKEY0123456789abcdefgh", "attempts": 1, "concurrency": 1}
    with ScriptedServer("gemini", ["drip", "header-drip", "ok"], delay=40.0) as server:
        model = get_model("gemini-2.0-flash", base_url=server.url, timeout_s=3, deadline_s=1.0,
                          **options)
        record = harness.evaluate(model, load_dataset("crema_d")[:3], "base", n_resamples=10)
    assert [i.error for i in record.items[:2]] == 2 * [
        "ReadTimeout: no complete answer within 1 s (the request's total deadline)"]
    assert record.items[2].probs is not None
    from harness.models import _deadline

    monkeypatch.setattr(_deadline, "MAX_ANSWER_BYTES", 2**20)
    with ScriptedServer("gemini", ["flood", "gzip-flood", "ok"]) as server:
        model = get_model("gemini-2.0-flash", base_url=server.url, **options)
        record = harness.evaluate(model, load_dataset("crema_d")[:3], "base", n_resamples=10)
    assert [i.error for i in record.items[:2]] == 2 * [
        "ReadError: the answer passed 1 MiB (the request's size limit): cut off"]
    assert record.items[2].probs is not None
    monkeypatch.undo()
    with ScriptedServer("gemini", ["401-echo", "ok"]) as server:
        model = get_model("gemini-2.0-flash", base_url=server.url, **options)
        with pytest.raises(KeyRejected, match="check GEMINI_API_KEY"):
            harness.evaluate(model, dataset, "base")
        assert len(server.requests) == 1
