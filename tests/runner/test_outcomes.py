"""A cell streams: its record and evidence are the same whatever the chunk size, the evidence's
per-item scores are the record's, and the spool never outlives what it was for."""

import json

import numpy as np
import pytest

from harness.record import items_path, read_items, read_record, write_record
from harness.runner.evaluate import evaluate
from harness.runner.outcomes import outcome
from harness.strategies import ItemResult
from tests.fakes import ScriptedModel
from tests.strategies.test_stream import model


def written(tmp_path, name, monkeypatch, chunk):
    monkeypatch.setenv("HARNESS_CHUNK", str(chunk))
    record = evaluate(model(), "crema_d", "w-bon", n_resamples=50)
    path = write_record(record, tmp_path / name)
    data = json.loads(path.read_text())
    for key in ("seconds", "gpu_seconds"):
        data.pop(key)
    data["meta"].pop("finished")
    return data, items_path(path).read_text(), read_record(path)


def test_the_record_and_its_evidence_do_not_depend_on_the_chunk_size(tmp_path, monkeypatch):
    whole, whole_items, _ = written(tmp_path, "whole", monkeypatch, 256)
    chunked, chunked_items, record = written(tmp_path, "chunked", monkeypatch, 4)
    assert chunked == whole and chunked_items == whole_items
    header, items = read_items(items_path(tmp_path / "chunked" / "cells" / f"{record.cell}.json"))
    lines = list(items)
    assert [line["scores"] for line in lines] == [dict(i.scores) if i.scores else None
                                                  for i in record.items]
    assert [line["id"] for line in lines] == [i.id for i in record.items]
    assert all(len(line["candidates"]) == 5 for line in lines) and header["labels"]


def test_an_outcome_keeps_what_the_record_reads_of_the_candidates():
    cands = [{"text": "nonsense " * 500, "valid": False, "verifier_score": None},
             {"text": "{}", "valid": False, "verifier_score": 0.8},  # scored, though invalid
             {"text": "{}", "valid": False}]  # no verifier: not an unscored candidate
    failed = outcome(ItemResult("a", candidates=cands, usage={"cost_usd": 0.5}))
    assert failed.row.answer == ("nonsense " * 500)[:2000] and failed.verifier_unscored == 1
    assert failed.has_usage and failed.cost == 0.5 and failed.alpha_preds is None
    mixed = [{"valid": True, "has_logprob": True, "probs": [1.0, 0.0], "logprob": -1.0,
              "n_tokens": 4, "alpha": -1.0, "weight": 0.7},
             {"valid": True, "has_logprob": True, "probs": [0.0, 1.0], "logprob": -2.0,
              "n_tokens": 2, "alpha": -2.0, "weight": 0.3}]
    good = outcome(ItemResult("b", probs=np.array([0.7, 0.3]), candidates=mixed))
    assert good.row.answer is None and good.row.weight_max == 0.7 and good.alpha_preds.shape == (3, 2)
    h = -(0.7 * np.log2(0.7) + 0.3 * np.log2(0.3))  # the weights' entropy in bits
    assert good.row.weight_entropy == pytest.approx(h)
    one = [dict(mixed[0], weight=1.0), dict(mixed[1], weight=0.0)]  # all weight on one beam
    peaked = outcome(ItemResult("c", probs=np.array([1.0, 0.0]), candidates=one)).row
    assert (peaked.weight_max, peaked.weight_entropy) == (1.0, 0.0)
    assert str(peaked.weight_entropy) == "0.0"  # not -0.0 in the record
    assert good.row.probs == (0.7, 0.3) and good.row.scores is None
    assert outcome(good) is good


def test_answers_json_cannot_write_as_they_are_still_make_strict_evidence_lines(tmp_path):
    """A lone surrogate (what a server's "\\ud800" decodes to), non-ASCII text and a beam
    without a log-probability (α -inf) in one cell: every line is strict JSON, read back."""
    def script(request, decoding):
        odd = "\ud800 Ärger 😠" if request.item_id.endswith("_XX") else "plain"
        return [(f'{{"Anger": 2, "Neutral": 1}} {odd}', -1.0 if k else float("-inf"))
                for k in range(decoding.num_candidates)]

    record = evaluate(ScriptedModel(script), "crema_d", "w-bon", n_resamples=10)
    path = items_path(write_record(record, tmp_path))
    lines = path.read_bytes().splitlines()
    assert len(lines) == len(record.items) + 1
    for line in lines:
        json.loads(line.decode("utf-8"), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    _, items = read_items(path)
    texts = {c["text"].split("} ")[1] for item in items for c in item["candidates"]}
    assert texts == {"plain", "\ud800 Ärger 😠"}


def test_a_cells_items_read_back_with_their_scores_and_their_spool_goes_with_them():
    from harness.data import load_dataset
    from harness.runner.outcomes import CellItems

    dataset = load_dataset("crema_d")[:3]
    results = [ItemResult(item.id, probs=np.full(len(dataset.labels), 1 / len(dataset.labels)))
               for item in dataset]
    with CellItems(dataset, np.zeros(len(dataset), dtype=int)) as items:
        items.add(results[:2])
        items.add(results[2:])
        evidence = items.evidence({"labels": list(dataset.labels)}, {1: {"js": 0.25}})
        read = list(evidence.items)
        assert [r["id"] for r in read] == [i.id for i in dataset]
        assert [r["scores"] for r in read] == [None, {"js": 0.25}, None]
        assert list(evidence.items) == read  # iterable again
        spool = items._spool
    assert spool.closed and [o.valid for o in items.outcomes] == [True] * 3


def test_an_outcome_is_small_and_frozen():
    """A cell holds one per item: no ``__dict__`` each, and nothing changes it once made."""
    import dataclasses

    from harness.record import ItemRecord
    from harness.runner.outcomes import Outcome

    kept = Outcome(ItemRecord("a", (1.0,)))
    assert not hasattr(kept, "__dict__")
    assert (kept.verifier_unscored, kept.alpha_preds, kept.has_usage, kept.cost) == (0, None, False,
                                                                                     None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        kept.cost = 1.0  # type: ignore[misc]


def test_a_strategy_of_one_s_own_weighing_beams_by_alpha_gets_its_mixtures_here():
    """No mixtures from the strategy: each choice of α's from the valid beams with a
    log-probability (an invalid beam, though scored, is left out)."""
    from harness.aggregate import dirichlet_mixtures
    from harness.strategies import ALPHAS, alpha_of

    beams = [{"valid": True, "has_logprob": True, "probs": [0.9, 0.1], "logprob": -1.0,
              "n_tokens": 4, "alpha": -1.0},
             {"valid": True, "has_logprob": True, "probs": [0.2, 0.8], "logprob": -3.0,
              "n_tokens": 2, "alpha": -3.0}]
    invalid = {"text": "?", "valid": False, "has_logprob": True, "probs": None, "logprob": -0.1,
               "n_tokens": 1, "alpha": -0.1}
    no_logprob = {"valid": True, "has_logprob": False, "probs": [0.5, 0.5], "logprob": None,
                  "n_tokens": 3, "alpha": None}
    got = outcome(ItemResult("a", probs=np.array([0.6, 0.4]),
                             candidates=[*beams, invalid, no_logprob])).alpha_preds
    expected = dirichlet_mixtures(np.array([b["probs"] for b in beams]),
                                  [[alpha_of(b, a) for b in beams] for a in ALPHAS], 1.0)
    np.testing.assert_allclose(got, expected)
    unusable = outcome(ItemResult("b", candidates=[invalid, no_logprob]))
    assert unusable.alpha_preds is None


def test_a_cell_s_items_used_as_a_context_are_themselves():
    from harness.data import load_dataset
    from harness.runner.outcomes import CellItems

    dataset = load_dataset("crema_d")[:1]
    items = CellItems(dataset, np.zeros(1, dtype=int))
    with items as entered:
        assert entered is items


def test_the_alpha_comparison_takes_the_strategy_s_mixtures_else_computes_them_at_tau_1():
    """W-BoN gives its mixtures; a strategy of one's own that weighs beams by α does not, and
    they are computed here from its usable beams (τ = 1, as the outcome's docstring says)."""
    from harness.aggregate import dirichlet_mixtures
    from harness.strategies import ALPHAS, alpha_of

    beams = [{"text": "", "valid": True, "has_logprob": True, "alpha": -2.0, "logprob": -2.0,
              "n_tokens": 4, "probs": [0.7, 0.3]},
             {"text": "", "valid": True, "has_logprob": True, "alpha": -5.0, "logprob": -5.0,
              "n_tokens": 2, "probs": [0.2, 0.8]},
             {"text": "", "valid": False, "has_logprob": True, "alpha": -1.0, "logprob": -1.0,
              "n_tokens": 3, "probs": None}]
    given = np.full((len(ALPHAS), 2), 0.5)
    kept = outcome(ItemResult("i", np.array([0.5, 0.5]), candidates=beams, alpha_mixtures=given))
    assert kept.alpha_preds is given
    computed = outcome(ItemResult("i", np.array([0.5, 0.5]), candidates=beams)).alpha_preds
    usable = beams[:2]
    expected = dirichlet_mixtures(np.array([c["probs"] for c in usable]),
                                  [[alpha_of(c, a) for c in usable] for a in ALPHAS], 1.0)
    np.testing.assert_array_equal(computed, expected)
    assert not np.allclose(expected[0], expected[1])  # the choices of α weigh them apart
    none_usable = [dict(c, valid=False) for c in beams]
    assert outcome(ItemResult("i", None, candidates=none_usable)).alpha_preds is None
    assert outcome(ItemResult("i", None, candidates=[dict(beams[0], alpha=None)])).alpha_preds \
        is None


def test_an_outcome_keeps_the_verifier_s_scores_of_its_valid_candidates_and_the_cell_counts_ties():
    from harness.runner.outcomes import verifier_use

    def scored(*scores, valid=True):
        return [{"text": "{}", "valid": valid, "verifier_score": s} for s in scores]

    rows = [scored(0.9, 0.9, 0.2),  # the top shared, not all alike
            scored(0.9, 0.9, 0.9),  # all alike
            scored(0.8, 0.9) + scored(0.9, valid=False),  # an invalid one's score is not used
            scored(0.5, None),  # one scored: nothing to tell apart
            scored(0.7, 0.3)]
    outcomes = [outcome(ItemResult(f"i{n}", candidates=c)) for n, c in enumerate(rows)]
    assert outcomes[2].verifier_scores == (0.8, 0.9) and outcomes[3].verifier_scores == (0.5,)
    plain = outcome(ItemResult("p", candidates=[{"text": "{}", "valid": True, "logprob": -1.0}]))
    assert plain.verifier_scores is None and verifier_use([plain]) == {}
    assert verifier_use([*outcomes, plain]) == {
        "scored": 11, "items": 4, "top_shared": 2, "all_equal": 1,
        "common": [[0.9, 6], [0.2, 1], [0.8, 1], [0.5, 1], [0.7, 1]]}  # by count, then first seen
    weighed = [outcome(ItemResult(f"w{n}", candidates=[dict(c, weight=w) for c, w in zip(
        scored(0.9, 0.3), weights)])) for n, weights in enumerate(([0.6, 0.4], [0.5, 0.5]))]
    assert verifier_use(weighed)["weight_max"] == 0.55  # the items' largest weights' mean
