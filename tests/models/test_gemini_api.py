import base64
import logging

import numpy as np
import pytest

pytest.importorskip("google.genai", reason="the api extra is not installed")

from harness.cache import GenerationCache  # noqa: E402
from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, DecodingUnsupported, ModelUnavailable, Request, get_model  # noqa: E402
from harness.models._api_common import wav_bytes  # noqa: E402
from harness.strategies import StrategyConfig, StrategyUnsupported, run_strategy  # noqa: E402
from tests.api_servers import ScriptedServer  # noqa: E402

KEY = "AIza" + "TESTPLANTEDKEY0123456789abcdefghij"  # a fake, built so no scanner flags it
LABELS = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")


def gemini(server, name="gemini-2.0-flash", **options):
    options = {"attempts": 3, "timeout_s": 1.0, "retry_initial_delay": 0.05,
               "retry_jitter": 0.01, **options}
    return get_model(name, api_key=KEY, base_url=server.url, **options)


def clip(seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(16_000)).astype(np.float32)


def test_audio_arrives_as_an_inline_wav_part():
    with ScriptedServer("gemini") as server:
        [out] = gemini(server).generate([Request(clip(), "the prompt")], Decoding())
    assert out.error is None and out.candidates[0].text.startswith('{"Anger": 0.6')
    assert out.usage["prompt_tokens"] == 130 and out.usage["audio_tokens"] == 32
    # 98 text tokens at $0.10, 32 audio tokens at $0.70, 25 answer and 7 thinking tokens at $0.40
    assert out.usage["cost_usd"] == pytest.approx((98 * 0.10 + 32 * 0.70 + 32 * 0.40) / 1e6)
    request = server.requests[0]
    assert request["path"].endswith("/models/gemini-2.0-flash:generateContent")
    audio, text = request["body"]["contents"][0]["parts"]
    inline = audio["inlineData"]
    assert inline.get("mimeType", inline.get("mime_type")) == "audio/wav"  # SDK versions differ
    assert base64.urlsafe_b64decode(inline["data"]) == wav_bytes(clip())  # the SDK sends urlsafe
    assert text == {"text": "the prompt"}
    assert request["body"]["generationConfig"]["temperature"] == 0.0


def test_an_answer_names_the_snapshot_that_gave_it_and_a_snapshot_can_be_pinned():
    """``gemini-2.0-flash`` is an alias Google moves: an answer keeps its ``modelVersion``; one
    that names none (an older server) keeps "", and ``model=`` asks a dated snapshot, which the
    cache keys apart (its revision)."""
    with ScriptedServer("gemini", served="gemini-2.0-flash-001") as server:
        [named] = gemini(server).generate([Request(clip(), "p")], Decoding())
        server.served = None
        [unnamed] = gemini(server).generate([Request(clip(), "p")], Decoding())
        pinned = gemini(server, model="gemini-2.0-flash-002")
        pinned.generate([Request(clip(), "p")], Decoding())
    assert named.served_by == "gemini-2.0-flash-001" and unnamed.served_by == ""
    assert server.requests[2]["path"].endswith("/models/gemini-2.0-flash-002:generateContent")
    assert (pinned.info.name, pinned.info.revision) == ("gemini-2.0-flash", "gemini-2.0-flash-002")


def test_retry_after_is_honoured_and_5xx_retries_are_bounded():
    with ScriptedServer("gemini", ["429", "ok"]) as server:
        [out] = gemini(server).generate([Request(clip(), "p")], Decoding())
    assert out.error is None and len(server.requests) == 2
    with ScriptedServer("gemini", ["500"] * 10) as server:
        [out] = gemini(server, attempts=3).generate([Request(clip(), "p")], Decoding())
    assert out.error and "500" in out.error and len(server.requests) == 3
    with ScriptedServer("gemini", ["429"] * 10) as server:
        [out] = gemini(server, rate_limit_retries=2).generate([Request(clip(), "p")], Decoding())
    assert out.error and "429" in out.error and len(server.requests) == 3


@pytest.mark.parametrize("behaviour", ["timeout", "malformed"])
def test_timeouts_and_malformed_bodies_become_item_errors(behaviour):
    with ScriptedServer("gemini", [behaviour] * 10, delay=3.0) as server:
        outs = gemini(server, attempts=2).generate([Request(clip(), "p"), Request(clip(1), "q")],
                                                   Decoding())
    assert all(o.error and not o.candidates for o in outs)


def test_structured_output_and_candidates():
    with ScriptedServer("gemini") as server:
        model = gemini(server, name="gemini-2.5-pro")
        decoding = Decoding(mode="sample", num_candidates=3, temperature=0.7, constrained=True,
                            json_labels=LABELS)
        [out] = model.generate([Request(clip(), "p")], decoding)
    config = server.requests[0]["body"]["generationConfig"]
    assert config["candidateCount"] == 3 and config["responseMimeType"] == "application/json"
    assert list(config["responseSchema"]["properties"]) == list(LABELS)
    assert len(out.candidates) == 3


def test_more_candidates_than_asked_for_are_cut_to_the_first_ones_with_a_note():
    with ScriptedServer("gemini", ["two-extra"]) as server:
        [out] = gemini(server).generate([Request(clip(), "p")],
                                        Decoding(mode="sample", num_candidates=3))
    assert len(out.candidates) == 3 and [c.n_tokens for c in out.candidates] == [25, 25, 25]
    assert out.notes == ("the server gave 5 candidates where 3 were asked for: the first 3 kept",)


def test_capabilities_and_strategies(tmp_path):
    dataset = load_dataset("crema_d")[:3]
    with ScriptedServer("gemini") as server:
        model = gemini(server)
        with pytest.raises(StrategyUnsupported, match="beam_search"):
            run_strategy("bon", model, dataset)
        with pytest.raises(DecodingUnsupported, match="^gemini-2.0-flash has no beam search$"):
            model.generate([], Decoding(mode="beam", num_candidates=3))  # asked directly
        results = run_strategy("base", model, dataset, cache=GenerationCache(tmp_path / "c.sqlite"),
                               config=StrategyConfig(constrained=True))
    assert all(r.valid for r in results)


def test_missing_key(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ModelUnavailable, match="set GEMINI_API_KEY"):
        get_model("gemini-2.5-pro")


def test_the_key_never_reaches_an_artifact(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    dataset = load_dataset("crema_d")[:2]
    with ScriptedServer("gemini", ["400-echo", "ok"]) as server:
        results = run_strategy("base", gemini(server, concurrency=1), dataset,
                               cache=GenerationCache(tmp_path / "cache.sqlite"))
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["x-goog-api-key"] == KEY
    assert any(r.error for r in results)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
    assert KEY not in repr(results) and KEY not in caplog.text


@pytest.mark.parametrize("header, seconds", [
    ("2", 2.0), ("0", 0.0), ("1.5", 1.5), ("nan", None), ("-5", None), ("inf", None), ("", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", None), (None, None),
])
def test_only_a_finite_retry_after_of_at_least_zero_is_waited(header, seconds):
    from types import SimpleNamespace

    from harness.models.gemini_api import _retry_after

    headers = {} if header is None else {"retry-after": header}
    assert _retry_after(SimpleNamespace(response=SimpleNamespace(headers=headers))) == seconds


def test_a_token_in_the_servers_url_is_sent_and_neither_recorded_nor_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with ScriptedServer("gemini") as server:
        model = get_model("gemini-2.0-flash", api_key=KEY,
                          base_url=server.url.replace("http://", "http://TOKEN-PLANTED-77@"))
        [out] = model.generate([Request(clip(), "p")], Decoding())
    assert out.error is None and model.info.device == server.url
    sent = base64.b64decode(server.requests[0]["headers"]["Authorization"].split()[1]).decode()
    assert sent == "TOKEN-PLANTED-77:" and "TOKEN-PLANTED-77" not in caplog.text


def test_a_thinking_models_answer_keeps_its_own_budget_beside_the_thoughts():
    """2.5 Pro's output limit counts its thoughts: a limit of the answer's 96 tokens left its
    answers empty; the limit is the answer's plus the thinking budget."""
    with ScriptedServer("gemini") as server:
        for model, args in (("gemini-2.5-pro", {}), ("gemini-2.5-pro", {"thinking_budget": 128}),
                            ("gemini-2.0-flash", {})):
            gemini(server, model, **args).generate([Request(clip(), "p")], Decoding())
    configs = [request["body"]["generationConfig"] for request in server.requests]
    assert [c["maxOutputTokens"] for c in configs] == [96 + 32_768, 96 + 128, 96]
    assert ["thinkingConfig" in c for c in configs] == [False, True, False]
    thinking = configs[1]["thinkingConfig"]
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 128  # SDKs differ
    assert gemini(server, "gemini-2.5-pro").info.options == (("thinking_budget", "dynamic"),)
    assert gemini(server, "gemini-2.0-flash").info.options == ()
    with pytest.raises(ValueError, match="gemini-2.0-flash does not think"):
        gemini(server, "gemini-2.0-flash", thinking_budget=128)
    with pytest.raises(ValueError, match="thinking_budget must be a whole number of tokens from 1"):
        gemini(server, "gemini-2.5-pro", thinking_budget="lots")


def test_closing_the_model_lets_its_connections_go():
    with ScriptedServer("gemini", ["ok", "ok"]) as server:
        model = gemini(server)
        [out] = model.generate([Request(clip(), "p")], Decoding())
        model.close()
        [after] = model.generate([Request(clip(), "p")], Decoding())
    assert out.error is None and "closed" in after.error and len(server.requests) == 1
