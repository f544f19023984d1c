"""A model call that raises costs the requests that make it raise; a failing model stops the run;
answers that break the interface are refused (harness.cache.isolation)."""

import numpy as np
import pytest

from harness.cache import GenerationCache, cached_generate, cached_label_logprobs, generation_keys
from harness.cache.isolation import IN_A_ROW
from harness.data import load_dataset
from harness.models import (
    Candidate,
    Decoding,
    DecodingUnsupported,
    Generation,
    KeyRejected,
    LabelScores,
    ModelFailed,
    Request,
)
from harness.runner.evaluate import evaluate
from tests.fakes import ScriptedModel

ANSWER = [('{"Anger": 0.75, "Sadness": 0.25}', -1.0)]


def requests(n):
    return [Request(np.full(160, i, np.float32), "p", f"item{i}") for i in range(n)]


class Breaking(ScriptedModel):
    """Raises ``error`` on any call that holds a request ``breaks(request)`` names."""

    def __init__(self, breaks, error=None):
        super().__init__(lambda r, d: ANSWER)
        self.breaks, self.error = breaks, error or IndexError("a shape it cannot take")

    def generate(self, requests, decoding):
        if any(self.breaks(r) for r in requests):
            self.calls += 1
            raise self.error
        return super().generate(requests, decoding)

    def label_logprobs(self, requests, labels):
        if any(self.breaks(r) for r in requests):
            raise self.error
        return [LabelScores(-np.arange(1.0, len(labels) + 1)) for _ in requests]


def test_a_request_that_breaks_the_model_costs_its_own_item_and_the_call_is_split_to_find_it():
    model = Breaking(lambda r: r.item_id in ("item3", "item40"))
    out = cached_generate(model, requests(64), Decoding(), GenerationCache())
    failed = [i for i, g in enumerate(out) if g.error is not None]
    assert failed == [3, 40]
    assert out[3].error == ("the model failed on this item (asked alone): IndexError: a shape it "
                            "cannot take")
    assert all(g.candidates[0].text == ANSWER[0][0] for i, g in enumerate(out) if i not in failed)
    assert model.calls <= 2 * 64 - 1 and model.requests == 62  # each good request answered once


def test_a_model_failing_on_every_request_stops_the_run_keeping_what_earlier_chunks_computed(
        tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_CHUNK", "8")
    model = Breaking(lambda r: int(r.item_id[4:]) >= 16, RuntimeError("CUDA error: device-side "
                                                                        "assert triggered"))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    with pytest.raises(ModelFailed, match=f"failed on the first {IN_A_ROW} requests asked alone "
                                          "and answered nothing: the model is failing, not the "
                                          "items; the last: RuntimeError: CUDA error") as caught:
        cached_generate(model, requests(40), Decoding(), cache)
    assert isinstance(caught.value.__cause__, RuntimeError)  # the model's own traceback
    assert model.calls < 16  # it stopped early, not after 2n calls
    again = ScriptedModel(lambda r, d: ANSWER)
    cached_generate(again, requests(16), Decoding(), cache)
    assert again.requests == 0  # the two chunks before the failure were kept


def test_bad_items_side_by_side_after_an_answer_cost_only_themselves():
    """Six clips in a row that break the model, after others it answered: not a failing model."""
    model = Breaking(lambda r: 10 <= int(r.item_id[4:]) < 16)
    out = cached_generate(model, requests(32), Decoding(), GenerationCache())
    assert [i for i, g in enumerate(out) if g.error] == list(range(10, 16))


@pytest.mark.parametrize("error", [KeyRejected("OPENAI_API_KEY was refused"),
                                   DecodingUnsupported("no beam search"),
                                   NotImplementedError("no label log-probabilities")])
def test_what_concerns_the_run_is_raised_at_once_without_splitting(error):
    model = Breaking(lambda r: True, error)
    with pytest.raises(type(error)):
        cached_generate(model, requests(32), Decoding(), GenerationCache())
    assert model.calls == 1


def test_answers_that_break_the_interface_are_refused():
    class Short(ScriptedModel):
        def generate(self, requests, decoding):
            return super().generate(requests, decoding)[:-1]

    with pytest.raises(ModelFailed, match="returned 4 answers for 5 requests"):
        cached_generate(Short(lambda r, d: ANSWER, name="short"), requests(5), Decoding(),
                        GenerationCache())

    class Malformed(ScriptedModel):
        def generate(self, requests, decoding):
            return ["text", Generation((Candidate(None, 3, -1.0),)),
                    Generation((Candidate("{}", "3", -1.0),)),
                    Generation((Candidate("{}", 3, "-1"),)), *super().generate(requests[4:], decoding)]

    cache, odd = GenerationCache(), Malformed(lambda r, d: ANSWER, name="odd")
    out = cached_generate(odd, requests(5), Decoding(), cache)
    assert [g.error for g in out] == [
        "odd answered malformed: a str, not a Generation",
        "odd answered malformed: candidate 0: its text is a NoneType",
        "odd answered malformed: candidate 0: its token count is a str",
        "odd answered malformed: candidate 0: its log-likelihood is a str", None]
    keys = generation_keys(odd.info, requests(5), Decoding())
    assert cache.missing(keys) == set(keys[:4])  # nothing malformed is stored: a rerun asks again


def test_a_cell_records_the_item_that_broke_the_model_and_scores_the_rest():
    dataset = load_dataset("crema_d")
    bad = dataset[5].id
    model = Breaking(lambda r: r.item_id == bad)
    for strategy in ("base", "readout"):
        record = evaluate(model, dataset, strategy, n_resamples=10)
        assert record.metrics.n_valid == len(dataset) - 1, strategy
        assert "IndexError: a shape it cannot take" in record.items[5].error, strategy
    rows = cached_label_logprobs(model, requests(3), ["a", "b"], None)
    assert all(row.error is None for row in rows)


def test_a_candidates_numbers_may_be_any_integer_and_real_but_not_a_bool():
    from harness.cache.isolation import generation_problem

    def problem(n_tokens, logprob):
        return generation_problem(Generation((Candidate("{}", n_tokens, logprob),)))

    assert problem(3, -1.0) is problem(np.int64(3), np.float32(-1.0)) is problem(3, -1) is None
    assert problem(True, -1.0) == "candidate 0: its token count is a bool"
    assert problem(3, False) == "candidate 0: its log-likelihood is a bool"
    assert problem(3.0, -1.0) == "candidate 0: its token count is a float"


def test_an_answer_breaking_the_interface_elsewhere_is_named_and_label_scores_are_checked():
    from harness.cache.isolation import generation_problem, label_scores_problem

    assert generation_problem(Generation(error=500)) == "its error is not a string"
    odd = "its usage is not a dict or a note is not a string"
    assert generation_problem(Generation(usage=[])) == generation_problem(
        Generation(notes=(b"n",))) == odd
    assert generation_problem(Generation((Candidate("{}", 1, -1.0), ("{}", 1, -1.0)))) == (
        "candidate 1: a tuple, not a Candidate")
    problem = label_scores_problem(2)
    assert problem(LabelScores(np.zeros(2))) is None
    assert problem([0.0, 0.0]) == "a list, not LabelScores"
    assert problem(LabelScores(np.zeros(3))) == "(3,) label scores for 2 labels"
    assert problem(LabelScores([0.0, 0.0])) == "None label scores for 2 labels"


def test_fewer_bad_items_first_than_stop_a_run_cost_only_themselves_and_reasons_are_cut():
    model = Breaking(lambda r: int(r.item_id[4:]) < IN_A_ROW - 1, IndexError("x" * 10_000))
    out = cached_generate(model, requests(8), Decoding(), GenerationCache())
    assert [g.error is not None for g in out] == [True] * (IN_A_ROW - 1) + [False] * (
        9 - IN_A_ROW)
    prefix = "the model failed on this item (asked alone): "
    assert out[0].error == prefix + ("IndexError: " + "x" * 10_000)[:500]
