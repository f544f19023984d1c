import base64
import io
import logging

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("openai", reason="the api extra is not installed")

from harness.cache import GenerationCache  # noqa: E402
from harness.data import load_dataset  # noqa: E402
from harness.models import Decoding, ModelUnavailable, Request, get_model  # noqa: E402
from harness.models._api_common import wav_bytes  # noqa: E402
from harness.strategies import StrategyUnsupported, run_strategy  # noqa: E402
from tests.api_servers import ScriptedServer  # noqa: E402

KEY = "sk-" + "test-PLANTEDKEY-0123456789abcdef"  # a fake, built so no scanner flags it
LABELS = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")


def gpt4o(server, **options):
    options = {"max_retries": 2, "timeout": 0.5, **options}
    return get_model("gpt-4o", api_key=KEY, base_url=server.url + "/v1", **options)


def clip(seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(16_000)).astype(np.float32)


def test_audio_arrives_as_wav_and_the_answer_comes_back():
    with ScriptedServer("openai") as server:
        model = gpt4o(server)
        [out] = model.generate([Request(clip(), "the prompt")], Decoding())
    assert out.error is None and out.candidates[0].text.startswith('{"Anger": 0.6')
    assert np.isnan(out.candidates[0].logprob)  # no logprobs for GPT-4o audio
    assert out.served_by == ""  # the server echoed the name asked for: no snapshot learnt
    assert out.usage["prompt_tokens"] == 120 and out.usage["audio_tokens"] == 10
    # 110 text tokens at $2.50, 10 audio tokens at $40 and 20 output tokens at $10 per million
    assert out.usage["cost_usd"] == pytest.approx((110 * 2.5 + 10 * 40 + 20 * 10) / 1e6)
    body = server.requests[0]["body"]
    assert body["model"] == "gpt-4o-audio-preview" and body["temperature"] == 0.0
    audio_part, text_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "the prompt"}
    sent = base64.b64decode(audio_part["input_audio"]["data"])
    assert audio_part["input_audio"]["format"] == "wav" and sent == wav_bytes(clip())
    decoded, rate = sf.read(io.BytesIO(sent), dtype="float32")
    assert rate == 16_000 and np.abs(decoded - clip()).max() < 1e-4


def test_429_with_retry_after_is_retried_and_500_retries_are_bounded():
    with ScriptedServer("openai", ["429", "ok"]) as server:
        [out] = gpt4o(server).generate([Request(clip(), "p")], Decoding())
    assert out.error is None and len(server.requests) == 2
    with ScriptedServer("openai", ["500"] * 10) as server:
        [out] = gpt4o(server, max_retries=2).generate([Request(clip(), "p")], Decoding())
    assert "InternalServerError" in out.error and len(server.requests) == 3


@pytest.mark.parametrize(("behaviour", "reason"), [("timeout", "Timeout"),
                                                    ("malformed", "")])
def test_timeouts_and_malformed_bodies_become_item_errors(behaviour, reason):
    with ScriptedServer("openai", [behaviour] * 5) as server:
        outs = gpt4o(server, max_retries=1).generate([Request(clip(), "p")], Decoding())
    assert outs[0].error and reason in outs[0].error and not outs[0].candidates
    assert len(server.requests) <= 2


def test_one_failing_item_loses_nothing_else_and_a_rerun_only_redoes_it(tmp_path):
    dataset = load_dataset("crema_d")[:6]
    cache = GenerationCache(tmp_path / "c.sqlite")
    with ScriptedServer("openai", ["ok", "ok", "500", "500", "500", "ok", "ok", "truncated"]) as s:
        first = run_strategy("base", gpt4o(s, max_retries=2, concurrency=1), dataset, cache=cache)
    errors = [r for r in first if r.error]
    assert len(errors) == 1 and "InternalServerError" in errors[0].error
    truncated = [r for r in first if r.error is None and not r.valid]
    assert len(truncated) == 1  # cut-off JSON text: recorded invalid, never guessed
    assert sum(r.valid for r in first) == 4
    assert all(r.usage["prompt_tokens"] == 120 and r.usage["cost_usd"] > 0 for r in first
               if r.error is None)
    with ScriptedServer("openai") as s:
        second = run_strategy("base", gpt4o(s), dataset, cache=cache)
    assert len(s.requests) == 1 and all(r.error is None for r in second)


def test_each_answer_names_the_snapshot_that_gave_it_and_a_cell_counts_them(tmp_path):
    """``gpt-4o-audio-preview`` is an alias OpenAI moves to newer snapshots: each answer keeps the
    one the server named, the cache keeps it with the answer, and a cell's record counts its
    answers under each, those read from the cache included."""
    from harness import evaluate
    from harness.record import write_record
    from harness.report import build_report

    dataset = load_dataset("crema_d")[:4]
    cache = GenerationCache(tmp_path / "c.sqlite")
    old, new = "gpt-4o-audio-preview-2024-12-17", "gpt-4o-audio-preview-2025-06-03"
    with ScriptedServer("openai", served=old) as server:
        model = gpt4o(server, concurrency=1)
        [out] = model.generate([Request(clip(), "p")], Decoding())
        first = evaluate(model, dataset[:2], "base", cache=cache)
        server.served = new  # the alias moved on: the next two items are answered by another model
        both = evaluate(model, dataset, "base", cache=cache)
        model.close()
    assert out.served_by == old
    assert first.meta["served_by"] == {"gpt-4o": {old: 2}}
    assert both.meta["served_by"] == {"gpt-4o": {old: 2, new: 2}}
    assert len(server.requests) == 1 + 2 + 2  # the first two items read from the cache
    write_record(both, tmp_path / "run")
    said = " ".join(build_report(tmp_path / "run").results)
    assert f"answers by snapshot: gpt-4o from {old} (2 answers) and {new} (2)." in said
    assert ("Cells whose answers came from more than one snapshot of a model" in said
            and f"gpt-4o crema_d base: gpt-4o from {old} (2 answers) and {new} (2)" in said)
    assert f"from {old} (2 answers) and" in " ".join((tmp_path / "run" / "tables.md").read_text().split())


def test_capabilities_are_explicit():
    with ScriptedServer("openai") as server:
        model = gpt4o(server)
        dataset = load_dataset("crema_d")[:2]
        for strategy in ("bon", "w-bon", "readout"):
            with pytest.raises(StrategyUnsupported):
                run_strategy(strategy, model, dataset)
        assert all(r.valid for r in run_strategy("sample-n", model, dataset))


def test_gpt4o_as_the_verifier():
    dataset = load_dataset("crema_d")[:2]
    local = get_model("tiny-qwen2-audio") if _has_torch() else None
    if local is None:
        pytest.skip("needs the hf extra for the candidate model")
    with ScriptedServer("openai", text="0.8") as server:
        results = run_strategy("alm-v", local, dataset, verifier=gpt4o(server))
    assert all(c["verifier_score"] == 0.8 for r in results for c in r.candidates)
    assert "Only scoring based on emotion content" in server.requests[0]["body"]["messages"][0][
        "content"][1]["text"]


def _has_torch():
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_choice_filtered_before_any_text_says_its_finish_reason():
    with ScriptedServer("openai", ["blocked"]) as server:
        [out] = gpt4o(server).generate([Request(clip(), "p")], Decoding(mode="sample",
                                                                       num_candidates=3))
    assert [c.text == "" for c in out.candidates] == [True, False, False]
    assert out.notes == ("1 of 3 candidate(s) came back with no text "
                         "(finish reason content_filter)",)


def test_without_logprobs_a_candidates_tokens_are_the_usage_shared_among_the_choices_given():
    """A server that once gives one choice where three were asked: that one has all the
    completion tokens, not a third of them."""
    with ScriptedServer("openai", ["ok", "one-choice"]) as server:
        outs = gpt4o(server, concurrency=1).generate([Request(clip(), "p"), Request(clip(1), "q")],
                                                     Decoding(mode="sample", num_candidates=3))
    assert [[c.n_tokens for c in out.candidates] for out in outs] == [[20, 20, 20], [20]]


def test_a_server_giving_more_candidates_than_asked_for_has_the_first_ones_kept_and_a_note():
    """Best of 3 over 5 would be another protocol: the first 3 in the server's order stay
    (ranked after), and the item's notes say so; the usage stays what the server counted."""
    with ScriptedServer("openai", ["two-extra"]) as server:
        model = get_model("openai-compatible:m", base_url=server.url + "/v1", max_retries=0,
                          beam_search=True, n_candidates=True, logprobs=True)
        [out] = model.generate([Request(clip(), "p")], Decoding(mode="sample", num_candidates=3))
    assert [round(c.logprob, 6) for c in out.candidates] == [-0.5, -1.0, -1.5]  # ranks 1-3 of 5
    assert out.notes == ("the server gave 5 candidates where 3 were asked for: the first 3 kept",)


def test_openai_compatible_server_beams_and_logprobs():
    with ScriptedServer("openai") as server:
        model = get_model("openai-compatible:Qwen/Qwen2-Audio-7B-Instruct", base_url=server.url + "/v1",
                          max_retries=0)
        [out] = model.generate([Request(clip(), "p")], Decoding(mode="beam", num_candidates=3,
                                                                temperature=0.7))
    body = server.requests[0]["body"]
    assert body["use_beam_search"] is True and body["n"] == 3 and body["logprobs"] is True
    # beams ranked by the raw sum of log-probs (α, no length normalisation), never sampled
    assert body["length_penalty"] == 0.0 and body["temperature"] == 0.0 and "top_p" not in body
    assert not model.info.capabilities.label_logprobs  # the readout needs a local model
    assert [c.logprob for c in out.candidates] == pytest.approx([-0.5, -1.0, -1.5])
    assert model.info.capabilities.beam_search and model.info.name.startswith("openai-compatible:")


def test_missing_configuration_is_a_clear_skip_reason(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_COMPATIBLE_BASE_URL", raising=False)
    with pytest.raises(ModelUnavailable, match="set OPENAI_API_KEY"):
        get_model("gpt-4o")
    with pytest.raises(ModelUnavailable, match="set OPENAI_COMPATIBLE_BASE_URL"):
        get_model("openai-compatible:some-model")


def test_the_key_never_reaches_an_artifact(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    dataset = load_dataset("crema_d")[:3]
    cache_path = tmp_path / "cache.sqlite"
    with ScriptedServer("openai", ["400-echo", "ok", "ok"]) as server:
        results = run_strategy("base", gpt4o(server, max_retries=0, concurrency=1), dataset,
                               cache=GenerationCache(cache_path))
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"  # it was sent...
    echoed = [r.error for r in results if r.error]
    assert echoed and "Incorrect API key provided" in echoed[0]
    for path in tmp_path.rglob("*"):  # ...but is nowhere the run wrote or said
        if path.is_file():
            assert KEY.encode() not in path.read_bytes()
    assert KEY not in repr(results) and KEY not in caplog.text


def test_a_password_in_the_servers_url_is_sent_and_never_recorded(tmp_path, caplog):
    import harness
    from harness.record import write_record

    caplog.set_level(logging.DEBUG)
    password = "PLANTED-proxy-pass-42"
    with ScriptedServer("openai", ["400-echo", "ok"]) as server:
        url = server.url.replace("http://", f"http://alice:{password}@") + "/v1"
        model = get_model("openai-compatible:org/m", base_url=url, max_retries=0, concurrency=1)
        record = harness.evaluate(model, load_dataset("crema_d")[:2], "base",
                                  cache=tmp_path / "c.sqlite", n_resamples=10)
        write_record(record, tmp_path / "run")
    sent = base64.b64decode(server.requests[0]["headers"]["Authorization"].split()[1]).decode()
    assert sent == f"alice:{password}"  # the proxy's basic auth went with each request...
    assert record.meta["model"]["device"] == server.url + "/v1"  # ...and the record names the server
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert password not in caplog.text and password not in repr(record)


def test_closing_the_model_lets_its_connections_go():
    with ScriptedServer("openai", ["ok", "ok"]) as server:
        model = gpt4o(server)
        [out] = model.generate([Request(clip(), "p")], Decoding())
        model.close()
        [after] = model.generate([Request(clip(), "p")], Decoding())
    assert out.error is None and "closed" in after.error and len(server.requests) == 1
