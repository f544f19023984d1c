"""A cell's result under each reading of its invalid items (left out, or each scored as a uniform
guess), from the items it already has (W-BoN's α and ALM-v's tie rule: tests/runner/test_evaluate.py)."""

import json

import numpy as np

import harness
from harness import metrics
from harness.data import load_dataset
from harness.record import read_record, write_record
from tests.fakes import ScriptedModel

ANSWERED = np.array([0.6, 0.1, 0.1, 0.1, 0.05, 0.05])  # CREMA-D's six classes, in its order


def answering(valid_ids):
    """A model that answers :data:`ANSWERED` for the items of ``valid_ids`` and gives the others
    no distribution."""
    answer = json.dumps(dict(zip(load_dataset("crema_d").labels, ANSWERED.tolist())))
    return ScriptedModel(lambda r, d: [(answer if r.item_id in valid_ids else "I cannot tell.", -1.0)])


def test_the_invalid_items_are_left_out_or_scored_as_a_uniform_guess(tmp_path):
    dataset = load_dataset("crema_d")
    valid_ids = {item.id for item in dataset[::3]}
    record = harness.evaluate(answering(valid_ids), dataset, "base", n_resamples=200)
    m = record.metrics
    assert (m.n_valid, m.n_items) == (len(valid_ids), len(dataset)) and m.n_valid < m.n_items
    left, uniform = m.invalid["left_out"], m.invalid["uniform"]
    assert left["n"] == m.n_valid and uniform["n"] == m.n_items
    for name in ("js", "bc", "r2"):
        assert left[name] == m.scores[name].mean  # the cell's own means
    k = len(dataset.labels)
    pred = np.array([ANSWERED if item.id in valid_ids else np.full(k, 1 / k) for item in dataset])
    by_hand = {"js": metrics.js_distance(dataset.votes, pred), "bc": metrics.bhattacharyya(
        dataset.votes, pred), "r2": metrics.r2(dataset.votes, pred)}
    for name, values in by_hand.items():
        assert np.isclose(uniform[name], np.mean(values), rtol=0, atol=1e-12)
        low, high = uniform[f"{name}_ci"]
        assert low < uniform[name] < high
    assert uniform["js"] != left["js"]
    write_record(record, tmp_path)  # kept in the record file, read back alike
    summary = json.loads((tmp_path / "cells" / f"{record.cell}.json").read_text())
    assert summary["metrics"]["invalid"]["uniform"]["n"] == len(dataset)
    assert read_record(tmp_path / "cells" / f"{record.cell}.json").metrics.invalid == m.invalid


def test_a_model_invalid_on_every_item_scores_as_the_uniform_baseline_under_that_reading():
    dataset = load_dataset("crema_d")
    none = harness.evaluate(answering(set()), dataset, "base", n_resamples=50).metrics
    baseline = harness.evaluate("uniform", dataset, "base", n_resamples=50).metrics
    assert none.n_valid == 0 and none.invalid["left_out"] == {"n": 0}
    for name in ("js", "bc", "r2"):
        assert np.isclose(none.invalid["uniform"][name], baseline.scores[name].mean, atol=1e-12)


def test_a_cell_whose_items_are_all_valid_keeps_no_readings():
    dataset = load_dataset("crema_d")
    m = harness.evaluate(answering({item.id for item in dataset}), dataset, "base",
                         n_resamples=50).metrics
    assert m.n_valid == m.n_items and m.invalid == {} and "invalid" not in m.to_json()
