"""``StrategyConfig.invalid``: an answer that gave no distribution left out (the default) or
scored as a uniform guess, in the cell's own numbers, its items and what it is comparable with."""

import json

import pytest

import harness
from harness.data import load_dataset
from harness.record import UNIFORM_GUESS, input_changes, inputs_of, write_record
from harness.strategies import StrategyConfig
from tests.fakes import ScriptedModel

ANSWERED = [0.6, 0.1, 0.1, 0.1, 0.05, 0.05]  # CREMA-D's six classes, in its order


def answering(valid_ids, failing=()):
    """A model that answers :data:`ANSWERED` (as many times as the decoding asks) for the items
    of ``valid_ids``, no distribution for the others, and fails on those of ``failing``."""
    answer = json.dumps(dict(zip(load_dataset("crema_d").labels, ANSWERED)))

    def script(request, decoding):
        if request.item_id in failing:
            raise RuntimeError("the server went away")
        text = answer if request.item_id in valid_ids else "I cannot tell."
        return [(text, -1.0 - n) for n in range(decoding.num_candidates)]
    return ScriptedModel(script)


@pytest.fixture(scope="module")
def crema_d():
    dataset = load_dataset("crema_d")
    return dataset, {item.id for item in dataset[::3]}, {dataset[1].id}


@pytest.mark.parametrize("strategy", ["base", "w-bon"])
def test_the_uniform_reading_is_the_cells_own_numbers_and_the_left_out_one_beside_them(
        crema_d, strategy, tmp_path):
    dataset, valid_ids, failing = crema_d
    cache = tmp_path / "cache.sqlite"
    left = harness.evaluate(answering(valid_ids, failing), dataset, strategy, cache=cache,
                            n_resamples=200)
    uniform = harness.evaluate(answering(valid_ids, failing), dataset, strategy, cache=cache,
                               n_resamples=200, config={"invalid": "uniform"})
    assert uniform.meta["generations"]["computed"] == 1  # the failed item alone: not cached
    a, b = left.metrics, uniform.metrics
    assert (a.n_valid, b.n_valid, a.n_items) == (len(valid_ids), len(valid_ids), len(dataset))
    assert a.valid == b.valid and a.errors == b.errors == 1
    assert b.invalid == a.invalid and b.invalid["uniform"]["n"] == len(dataset) - 1
    for name in ("js", "bc", "r2"):  # the headline is one reading, the other kept beside it
        assert a.scores[name].mean == a.invalid["left_out"][name]
        assert b.scores[name].mean == pytest.approx(b.invalid["uniform"][name], abs=1e-12)
        assert list(b.scores[name].ci95) == pytest.approx(b.invalid["uniform"][f"{name}_ci"],
                                                          abs=1e-12)
    assert b.scores["js"].mean != a.scores["js"].mean
    filled = len(dataset) - len(valid_ids) - len(failing)
    assert b.rules == {**{k: v for k, v in a.rules.items() if k != "None"}, UNIFORM_GUESS: filled}
    assert (a.guessed, b.guessed) == (0, filled)


def test_an_item_scored_as_a_uniform_guess_keeps_why_and_what_it_answered(crema_d, tmp_path):
    dataset, valid_ids, failing = crema_d
    record = harness.evaluate(answering(valid_ids, failing), dataset, "base", n_resamples=50,
                              config={"invalid": "uniform"})
    items = {item.id: item for item in record.items}
    k = len(dataset.labels)
    guessed = items[dataset[2].id]
    assert guessed.probs == pytest.approx([1 / k] * k) and guessed.rule == UNIFORM_GUESS
    assert guessed.reason and guessed.answer == "I cannot tell."
    assert any("uniform guess" in note for note in guessed.notes)
    assert guessed.scores["js"] > 0  # scored, so paired with other cells and runs
    failed = items[dataset[1].id]  # no answer of the model's: left out under both readings
    assert failed.probs is None and failed.error and not failed.scores
    write_record(record, tmp_path)
    evidence = [json.loads(line) for line in (tmp_path / "cells" / f"{record.cell}.items.jsonl")
                .read_text().splitlines()[1:]]
    assert {row["rule"] for row in evidence if row["id"] == guessed.id} == {UNIFORM_GUESS}


def test_the_default_reading_keeps_every_snapshot_key_and_the_other_is_named_an_input_change(
        crema_d):
    dataset, valid_ids, _ = crema_d
    runs = {reading: harness.evaluate(answering(valid_ids), dataset, "base", n_resamples=20,
                                      config={"invalid": reading})
            for reading in ("left_out", "uniform")}
    before = inputs_of(runs["left_out"])
    assert "invalid" not in before["strategy_config"]  # as a record from before the setting
    assert input_changes(before, inputs_of(runs["uniform"])) == [
        "strategy_config.invalid \"left_out\" -> \"uniform\""]


def test_an_unknown_reading_is_refused():
    with pytest.raises(ValueError, match="invalid must be one of"):
        StrategyConfig(invalid="drop")


def test_the_gate_pairs_the_guessed_items_under_that_reading_and_names_a_change_of_reading(
        crema_d, tmp_path):
    from harness.runner.baseline_file import save_baseline
    from harness.runner.gating import gate

    dataset, valid_ids, failing = crema_d
    votes = {item.id: item.votes for item in dataset}
    runs = {reading: harness.evaluate(answering(valid_ids, failing), dataset, "base",
                                      n_resamples=50, config={"invalid": reading})
            for reading in ("left_out", "uniform")}
    path = save_baseline(runs["uniform"], tmp_path, votes, inputs_of(runs["uniform"]))
    again = gate(runs["uniform"], votes, path)
    assert {change.n for change in again.changes} == {len(dataset) - len(failing)}
    assert again.failures == [] and again.other_inputs == ()
    other = gate(runs["left_out"], votes, path)  # paired on the answers with a distribution
    assert {change.n for change in other.changes} == {len(valid_ids)}
    assert other.other_inputs == ("strategy_config.invalid \"uniform\" -> \"left_out\"",)
