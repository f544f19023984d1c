"""What the Gemini backend asks and how it reads what comes back, at the edges: which statuses
its SDK retries, a 403 stopping the model as a 401 does, what a sampling or logprobs request
carries, an answer without candidates or usage, and what it can do."""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("google.genai", reason="the api extra is not installed")

from harness.models import Decoding, KeyRejected, Request, get_model  # noqa: E402
from tests.api_servers import ScriptedServer  # noqa: E402


def gemini(server, **options):
    options = {"attempts": 3, "timeout_s": 2.0, "retry_initial_delay": 0.01,
               "retry_jitter": 0.01, **options}
    return get_model("gemini-2.0-flash", api_key="k", base_url=server.url, **options)


def requests(count=1):
    return [Request(np.zeros(1_600, np.float32), f"p{k}") for k in range(count)]


@pytest.mark.parametrize(("status", "tries"), [(408, 3), (500, 3), (502, 3), (503, 3), (504, 3),
                                               (501, 1), (400, 1)])
def test_the_sdk_retries_timeouts_and_server_errors_and_nothing_else(status, tries):
    with ScriptedServer("gemini", [f"status-{status}"] * 5) as server:
        [out] = gemini(server).generate(requests(), Decoding())
    assert str(status) in out.error and len(server.requests) == tries


def test_each_retry_waits_with_the_jitter_given(monkeypatch):
    """``retry_jitter`` reaches the SDK's backoff: each wait adds a draw from [0, jitter]."""
    import random

    drawn, uniform = [], random.uniform
    monkeypatch.setattr(random, "uniform", lambda low, high: drawn.append((low, high))
                        or uniform(low, high))
    with ScriptedServer("gemini", ["status-503"] * 3) as server:
        gemini(server, retry_jitter=0.03).generate(requests(), Decoding())
    assert len(drawn) >= 2 and set(drawn) == {(0, 0.03)}  # a draw (or more) a retry


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_stops_the_model(status):
    with (ScriptedServer("gemini", [f"status-{status}"]) as server,
          pytest.raises(KeyRejected, match=f"refused the key \\(HTTP {status}\\); check "
                                           r"GEMINI_API_KEY \(or GOOGLE_API_KEY\)$")):
        gemini(server, concurrency=1).generate(requests(3), Decoding())
    assert len(server.requests) == 1


def test_sampling_sends_its_nucleus_and_logprobs_are_asked_only_when_wanted():
    sample = Decoding(mode="sample", num_candidates=2, temperature=0.7, top_p=0.9)
    with ScriptedServer("gemini") as server:
        gemini(server).generate(requests(), sample)
        gemini(server).generate(requests(), Decoding())
        gemini(server, logprobs=True).generate(requests(), Decoding())
    configs = [r["body"]["generationConfig"] for r in server.requests]
    assert configs[0]["topP"] == 0.9 and configs[0]["candidateCount"] == 2
    assert "topP" not in configs[1] and "responseMimeType" not in configs[1]
    assert [c.get("responseLogprobs") for c in configs] == [None, None, True]


def test_json_mode_asks_for_json_without_a_schema():
    with ScriptedServer("gemini") as server:
        gemini(server, json_mode=True).generate(requests(), Decoding())
    config = server.requests[0]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "responseSchema" not in config


def test_an_answer_without_candidates_says_why_and_one_without_usage_counts_nothing():
    with ScriptedServer("gemini") as server:
        model = gemini(server)
    blocked = SimpleNamespace(candidates=[], prompt_feedback=SimpleNamespace(block_reason="SAFETY"))
    assert model._generation(blocked, 1).error == "no candidates: SAFETY"
    empty = SimpleNamespace(candidates=None, prompt_feedback=None)
    assert model._generation(empty, 1).error == "no candidates: the answer was empty"
    part = SimpleNamespace(text="{}")
    answer = SimpleNamespace(candidates=[SimpleNamespace(content=SimpleNamespace(parts=[part]))],
                             usage_metadata=None)
    out = model._generation(answer, 2)
    assert out.candidates[0].text == "{}" and out.candidates[0].n_tokens == 0
    assert out.candidates[0].finite  # no log-probabilities: NaN, and not a sign of bad logits
    assert out.usage == {"prompt_tokens": 0, "completion_tokens": 0, "thinking_tokens": 0,
                         "cost_usd": 0.0}
    details = [SimpleNamespace(modality="AUDIO", token_count=None),
               SimpleNamespace(modality="MediaModality.AUDIO", token_count=5),
               SimpleNamespace(modality="TEXT", token_count=9)]
    answer.candidates *= 2
    answer.usage_metadata = SimpleNamespace(candidates_token_count=20, prompt_token_count=14,
                                            prompt_tokens_details=details)
    out = model._generation(answer, 2)
    assert [c.n_tokens for c in out.candidates] == [10, 10]  # the count shared out
    assert out.usage["audio_tokens"] == 5
    answer.candidates = [SimpleNamespace(content=SimpleNamespace(parts=[part]), avg_logprobs=-0.5)]
    [alone] = model._generation(answer, 2).candidates
    assert (alone.n_tokens, alone.logprob) == (20, -10.0)  # α: the mean log-prob times the tokens


def test_what_gemini_can_do():
    with ScriptedServer("gemini") as server:
        model = gemini(server)
        with pytest.raises(NotImplementedError, match="gemini-2.0-flash returns no label"):
            model.label_logprobs(requests(), ("a", "b"))
    caps = model.info.capabilities
    assert (caps.audio, caps.n_candidates, caps.structured_output) == (True, True, True)
    assert (caps.beam_search, caps.label_logprobs, caps.logprobs) == (False, False, False)


def test_a_429_s_retry_after_is_waited_out(monkeypatch):
    from harness.models import gemini_api

    waits = []
    # the backend's own module of time, not the process's: another test's thread may be sleeping
    monkeypatch.setattr(gemini_api, "time", SimpleNamespace(sleep=waits.append))
    with ScriptedServer("gemini", ["429", "429-hour", "ok"]) as server:
        [out] = gemini(server).generate(requests(), Decoding())
    assert out.error is None and waits == [0.2, 60.0]  # the server's Retry-After, at most 60 s


@pytest.mark.parametrize(("budget", "accepted"), [(0, False), (1, True), (32_768, True),
                                                  (32_769, False), (True, False), (1.0, False)])
def test_a_thinking_budget_is_a_whole_number_from_1_to_32768(budget, accepted):
    from harness.models.gemini_api import _budget

    if accepted:
        assert _budget("gemini-2.5-pro", True, budget) == budget
    else:
        with pytest.raises(ValueError, match="from 1 to 32,768, not"):
            _budget("gemini-2.5-pro", True, budget)


def test_candidates_blocked_before_any_text_say_their_finish_reason():
    with ScriptedServer("gemini", ["blocked", "ok"]) as server:
        model = gemini(server, concurrency=1)
        decoding = Decoding(mode="sample", num_candidates=2)
        blocked, answered = model.generate(requests(2), decoding)
    assert [c.text for c in blocked.candidates] == ["", ""] and blocked.error is None
    assert blocked.notes == ("2 of 2 candidate(s) came back with no text (finish reason SAFETY)",)
    assert answered.notes == () and answered.candidates[0].text.startswith('{"Anger"')


def test_a_thought_summary_is_not_part_of_the_answer():
    with ScriptedServer("gemini", ["thoughts"]) as server:
        [out] = gemini(server).generate(requests(), Decoding())
    assert out.candidates[0].text.startswith('{"Anger"') and "Thinking" not in out.candidates[0].text
