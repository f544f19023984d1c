"""An OpenAI-compatible server that cannot decode as asked: the first request of a kind of
decoding goes alone as a probe, what it shows is remembered, and a kind the server cannot do
raises DecodingUnsupported with the server's own reason (never one failed item per request); the
backend's other edges: beams ranked best first, structured output, a non-completion answer, the
key variable a refusal names."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("openai", reason="the api extra is not installed")

from harness.models import Decoding, DecodingUnsupported, Request, get_model  # noqa: E402
from harness.models._api_common import KeyRejected  # noqa: E402
from tests.api_servers import ScriptedServer  # noqa: E402

BEAM = Decoding(mode="beam", num_candidates=3)
SAMPLE = Decoding(mode="sample", num_candidates=3, temperature=0.7, top_p=0.9)


def served(server, **options):
    return get_model("openai-compatible:m", base_url=server.url + "/v1",
                     **{"max_retries": 0, "timeout": 5, **options})


def requests(count):
    clip = np.zeros(1_600, dtype=np.float32)
    return [Request(clip, f"prompt {k}") for k in range(count)]


@pytest.mark.parametrize("status", ["400", "404", "422"])
def test_a_refused_kind_of_decoding_raises_with_the_server_s_reason_after_one_request(status):
    with ScriptedServer("openai", [status]) as server:
        model = served(server)
        with pytest.raises(DecodingUnsupported) as refused:
            model.generate(requests(4), BEAM)
        assert str(refused.value) == (
            "openai-compatible:m: the server refused beam decoding with 3 candidates (vLLM's "
            f"use_beam_search) (HTTP {status}: cannot do that ({status}))")
        with pytest.raises(DecodingUnsupported, match="the server refused beam decoding"):
            model.generate(requests(2), BEAM)  # remembered: nothing more is sent
        assert len(server.requests) == 1
        assert len(model.generate(requests(2), Decoding())) == 2  # greedy is never probed


@pytest.mark.parametrize(("shape", "decoding", "reason"), [
    ("one-choice", SAMPLE, "returned 1 candidate(s) where sample decoding with 3 candidates asked "
                           "for 3 (it ignores n)"),
    ("no-logprobs", BEAM, "returned beams without log-probabilities, so they cannot be ranked or "
                          "weighed"),
])
def test_a_server_that_ignores_what_it_was_asked_is_found_out_by_the_probe(shape, decoding,
                                                                           reason):
    with ScriptedServer("openai", [shape]) as server:
        model = served(server)
        with pytest.raises(DecodingUnsupported, match=re.escape(reason)):
            model.generate(requests(3), decoding)
        assert len(server.requests) == 1


def test_a_probe_that_succeeds_is_remembered_and_the_rest_run_together():
    with ScriptedServer("openai", ["ok"] * 5 + ["400"]) as server:
        model = served(server)
        caps = model.info.capabilities
        assert caps.beam_search and caps.n_candidates and caps.logprobs  # until said otherwise
        first = model.generate(requests(3), BEAM)
        again = model.generate(requests(2), BEAM)
        assert [len(g.candidates) for g in first + again] == [3] * 5
        assert all(g.error is None for g in first + again) and len(server.requests) == 5
        # known to work: a later refusal is its item's error, not a verdict on the decoding
        [refused] = model.generate(requests(1), BEAM)
    assert "BadRequestError" in refused.error and len(server.requests) == 6


def test_one_sample_working_says_nothing_of_several_so_several_are_probed_apart():
    """A server that ignores n gives one sample as asked: that one sample works says nothing of
    two, which are probed on their own and found out."""
    with ScriptedServer("openai", ["ok", "one-choice"]) as server:
        model = served(server)
        [one] = model.generate(requests(1), Decoding(mode="sample"))
        with pytest.raises(DecodingUnsupported, match=re.escape("returned 1 candidate(s) where "
                                                                "sample decoding with 2")):
            model.generate(requests(2), Decoding(mode="sample", num_candidates=2))
    assert len(one.candidates) == 1 and len(server.requests) == 2


def test_a_server_s_long_reason_is_cut_to_300_characters():
    with ScriptedServer("openai", ["400-long"]) as server, pytest.raises(DecodingUnsupported) as refused:
        served(server).generate(requests(1), BEAM)
    assert str(refused.value).endswith(f"(HTTP 400: {'x' * 300})")


def test_a_probe_failing_for_another_reason_is_its_item_s_error_and_probes_again():
    with ScriptedServer("openai", ["500", "ok"]) as server:
        model = served(server)
        first = model.generate(requests(2), SAMPLE)
        assert "InternalServerError" in first[0].error and first[1].error is None
        again = model.generate(requests(1), SAMPLE)  # nothing was learnt: probed again, alone
    assert again[0].error is None and len(server.requests) == 3
    assert {r["body"]["top_p"] for r in server.requests} == {0.9}  # sampling's nucleus is sent


def test_beams_are_ranked_best_first_whatever_order_the_server_sends():
    with ScriptedServer("openai", ["worst-first"]) as server:
        [beams] = served(server).generate(requests(1), BEAM)
    assert [c.logprob for c in beams.candidates] == pytest.approx([-0.5, -1.0, -1.5])


def test_gpt_4o_has_no_beam_search_and_no_label_log_probabilities():
    with ScriptedServer("openai") as server:
        model = get_model("gpt-4o", api_key="k", base_url=server.url + "/v1")
        with pytest.raises(DecodingUnsupported, match="^gpt-4o has no beam search$"):
            model.generate(requests(1), BEAM)
        with pytest.raises(NotImplementedError, match="gpt-4o returns no label log-probabilities"):
            model.label_logprobs(requests(1), ("a", "b"))
    assert server.requests == []


@pytest.mark.parametrize("name", ["gpt-4o", "openai-compatible:m"])
def test_constrained_decoding_asks_for_a_json_object(name):
    with ScriptedServer("openai") as server:
        model = get_model(name, api_key="k", base_url=server.url + "/v1")
        assert model.info.capabilities.structured_output
        model.generate(requests(1), Decoding(constrained=True, json_labels=("a", "b")))
        model.generate(requests(1), Decoding())
    bodies = [r["body"] for r in server.requests]
    assert bodies[0]["response_format"] == {"type": "json_object"}
    assert "response_format" not in bodies[1]


@pytest.mark.parametrize("decoding", [Decoding(), BEAM])
def test_a_refused_key_names_the_compatible_server_s_own_variable_probing_or_not(decoding):
    with (ScriptedServer("openai", ["401-echo"]) as server,
          pytest.raises(KeyRejected, match="check OPENAI_COMPATIBLE_API_KEY$")):
        served(server).generate(requests(3), decoding)
    assert len(server.requests) == 1 if decoding.mode == "beam" else len(server.requests) <= 3


def test_an_answer_that_is_not_a_completion_is_named_by_its_first_200_characters():
    with ScriptedServer("openai") as server:
        model = served(server)
    page = "<html>" + "x" * 400
    with pytest.raises(ValueError) as failed:
        model._generation(page, 1)
    assert str(failed.value) == f"the server's answer is not a chat completion: {page[:200]!r}"
    for choices in ([], None):  # an answer without a single choice is an error, never no answer
        with pytest.raises(ValueError, match="^the server's chat completion holds no choices"):
            model._generation(SimpleNamespace(choices=choices, usage=None), 1)
    choice = SimpleNamespace(message=SimpleNamespace(content="{}"), logprobs=None)
    unmetered = model._generation(SimpleNamespace(choices=[choice], usage=None), 1)
    assert unmetered.usage["prompt_tokens"] == 0 and unmetered.usage["completion_tokens"] == 0
    usage = SimpleNamespace(prompt_tokens=7, completion_tokens=20)
    for n, each in ((1, 20), (2, 10)):  # without logprobs: the completion's tokens shared out
        metered = model._generation(SimpleNamespace(choices=[choice] * n, usage=usage), n)
        assert [c.n_tokens for c in metered.candidates] == [each] * n
