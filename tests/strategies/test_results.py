"""``harness.strategies._results``: what an item's model calls cost, summed across the calls."""

from harness.data import load_dataset
from harness.models.api import Generation
from harness.strategies import add_usage, run_strategy
from tests.fakes import ScriptedModel


def test_usage_sums_counts_joins_lists_and_an_unknown_cost_stays_unknown():
    assert add_usage() == {}
    assert add_usage({"prompt_tokens": 3, "cost_usd": 0.5, "replies": ["a"]}, {},
                     {"prompt_tokens": 4, "completion_tokens": 2, "cost_usd": 0.25,
                      "replies": ["b"]}) == {
        "prompt_tokens": 7, "completion_tokens": 2, "cost_usd": 0.75, "replies": ["a", "b"]}
    # a call of unknown price makes the item's cost unknown, before or after a priced one
    assert add_usage({"cost_usd": None}, {"cost_usd": 1.0})["cost_usd"] is None
    assert add_usage({"cost_usd": 1.0}, {"cost_usd": None})["cost_usd"] is None
    assert add_usage({"cost_usd": 0.0}, {"cost_usd": 0.0})["cost_usd"] == 0.0


def test_a_result_made_with_its_id_alone_is_invalid_and_has_cost_nothing():
    """What a strategy of one's own starts from: no distribution, no tokens, no calls."""
    from harness.strategies import ItemResult

    result = ItemResult("item-1")
    assert (result.valid, result.tokens, result.usage, result.candidates, result.notes) == (
        False, 0, {}, [], [])
    assert ItemResult("item-2").usage is not result.usage  # each its own


class Priced(ScriptedModel):
    """A scripted model whose every answer reports its tokens and price."""

    def __init__(self, script, usage, name):
        super().__init__(script, name=name)
        self.usage = usage

    def generate(self, requests, decoding):
        return [Generation(g.candidates, usage=dict(self.usage))
                for g in super().generate(requests, decoding)]


def test_a_verified_item_costs_its_generation_and_each_candidates_verification():
    dataset = load_dataset("crema_d")[:2]
    beams = [('{"Anger": 1}', -1.0), ('{"Sadness": 1}', -2.0), ('{"Fear": 1}', -3.0)]
    model = Priced(lambda r, d: beams[: d.num_candidates],
                   {"prompt_tokens": 100, "completion_tokens": 30, "cost_usd": 0.01}, "answers")
    verifier = Priced(lambda r, d: [("0.5", -0.1)],
                      {"prompt_tokens": 120, "completion_tokens": 1, "cost_usd": 0.002}, "judge")
    for result in run_strategy("alm-v", model, dataset, verifier=verifier):
        assert result.usage["prompt_tokens"] == 100 + 3 * 120
        assert result.usage["completion_tokens"] == 30 + 3 * 1
        assert abs(result.usage["cost_usd"] - (0.01 + 3 * 0.002)) < 1e-12
        assert [c["verifier_reply"] for c in result.candidates] == ["0.5"] * 3


def test_an_answer_met_with_non_finite_logits_is_invalid_whatever_it_says():
    """A backend that met NaN logits while decoding marks its candidate so: the text may parse,
    but the candidate is invalid and keeps no distribution."""
    from harness.models.api import Candidate
    from harness.strategies._results import parsed_candidates

    labels = ("Anger", "Neutral")
    generation = Generation((Candidate('{"Anger": 1.0}', 3, -1.0, finite=False),
                             Candidate('{"Neutral": 1.0}', 3, -2.0)))
    [bad, good] = parsed_candidates(generation, labels)
    assert (bad["valid"], bad["probs"], bad["reason"]) == (False, None, "non-finite logits")
    assert (good["valid"], good["probs"]) == (True, [0.0, 1.0])
