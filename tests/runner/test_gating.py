import dataclasses

import numpy as np

from harness.record import CellMetrics, CellRecord, ItemRecord, input_changes, inputs_of
from harness.runner.baseline_file import save_baseline
from harness.runner.gating import gate, regressions

VOTES = {f"i{k}": np.eye(3)[k % 3] * 4 + 1 for k in range(40)}


def record(probs_for):
    items = tuple(ItemRecord(i, tuple(probs_for(v).tolist())) for i, v in VOTES.items())
    return CellRecord("m-d-s", "m", "d", "s", ("a", "b", "c"), CellMetrics(len(items), len(items), 1.0),
                      0.0, 0.0, items, {})


def test_same_predictions_pass_and_a_better_baseline_fails(tmp_path):
    noisy = record(lambda v: np.full(3, 1 / 3))
    path = save_baseline(noisy, tmp_path, VOTES)
    assert regressions(noisy, VOTES, path) == []
    perfect = record(lambda v: v / v.sum())
    path = save_baseline(perfect, tmp_path, VOTES)
    failures = regressions(noisy, VOTES, path)
    assert [f.split(":")[0] for f in failures] == ["js", "jsd", "bc", "r2", "acc"]
    assert "baseline 0.0000 -> 0." in failures[0] and "on 40 paired items" in failures[0]


def test_tolerance_absorbs_a_small_change(tmp_path):
    base = record(lambda v: v / v.sum())
    path = save_baseline(base, tmp_path, VOTES)
    slightly = record(lambda v: 0.98 * v / v.sum() + 0.02 / 3)
    assert regressions(slightly, VOTES, path, tolerance=0.2) == []
    assert regressions(slightly, VOTES, path, tolerance=0.0) != []


def test_floating_point_noise_is_not_a_regression(tmp_path):
    """The same predictions recomputed elsewhere: every item a float32 rounding worse is no finding."""
    base = record(lambda v: (v + 1.0) / (v + 1.0).sum())
    path = save_baseline(base, tmp_path, VOTES)
    nudged = record(lambda v: (v + 1.0 + 1e-7 * np.arange(3)) / (v + 1.0 + 1e-7 * np.arange(3)).sum())
    assert regressions(nudged, VOTES, path) == []


def test_a_model_update_is_judged_by_the_paired_bootstrap_and_says_how_it_went(tmp_path):
    noisy = record(lambda v: np.full(3, 1 / 3))
    path = save_baseline(dataclasses.replace(noisy, meta={"model": {"revision": "old"}}), tmp_path, VOTES)
    better = record(lambda v: v / v.sum())
    verdict = gate(dataclasses.replace(better, meta={"model": {"revision": "new"}}), VOTES, path)
    assert verdict.model_updated and verdict.failures == []
    assert verdict.summary.startswith("m-d-s: model revision old -> new: better on js, jsd, bc, r2, acc")
    assert verdict.summary.endswith("(40 paired items)")
    same = gate(dataclasses.replace(noisy, meta={"model": {"revision": "new"}}), VOTES, path)
    assert "not significantly different on js, jsd, bc, r2, acc" in same.summary


def test_a_run_whose_items_all_failed_is_not_passed_as_nothing_to_compare(tmp_path):
    path = save_baseline(record(lambda v: v / v.sum()), tmp_path, VOTES)
    failed = dataclasses.replace(record(lambda v: v / v.sum()),
                                 items=tuple(ItemRecord(i, None) for i in VOTES))
    verdict = gate(failed, VOTES, path)
    assert verdict.failures == ["not compared: the run scored 0 of the 40 items the baseline "
                                "scored, fewer than 2"]
    assert verdict.summary.endswith("nothing to compare (0 paired items)")
    empty_baseline = save_baseline(failed, tmp_path / "other", VOTES)  # recorded as failing
    assert gate(failed, VOTES, empty_baseline).failures == []
    elsewhere = dataclasses.replace(record(lambda v: v / v.sum()), items=tuple(  # another item set
        ItemRecord("x" + i.id, i.probs) for i in record(lambda v: v / v.sum()).items))
    assert gate(elsewhere, VOTES, path).failures == []


def test_a_run_given_other_inputs_than_its_baseline_says_which(tmp_path):
    def given(beams, revision):
        meta = {"model": {"revision": revision}, "strategy_config": {"beams": beams, "tau": 1.0},
                "decoding": {"mode": "beam"}}
        return dataclasses.replace(record(lambda v: v / v.sum()), meta=meta)

    path = save_baseline(given(5, "r1"), tmp_path, VOTES, inputs_of(given(5, "r1")))
    verdict = gate(given(1, "r2"), VOTES, path)
    assert verdict.other_inputs == ("strategy_config.beams 5 -> 1",)  # the revision: named apart
    assert verdict.summary.startswith("m-d-s: model revision r1 -> r2: ")
    assert verdict.summary.endswith("(40 paired items); unlike the baseline's inputs: "
                                    "strategy_config.beams 5 -> 1")
    assert gate(given(5, "r1"), VOTES, path).inputs_note == ""
    unrecorded = save_baseline(given(5, "r1"), tmp_path / "old", VOTES)  # inputs not recorded
    assert gate(given(1, "r1"), VOTES, unrecorded).inputs_note == ""


def test_input_changes_name_each_nested_input_and_cut_long_values():
    before = {"prompts": {"set": "paper", "templates": {"base/iemocap": "a" * 60}}, "seed": 0}
    after = {"prompts": {"set": "plain", "templates": {"base/iemocap": "b" * 60}}, "dtype": "bf16"}
    assert input_changes(before, after) == [
        'dtype null -> "bf16"', 'prompts.set "paper" -> "plain"',
        f'prompts.templates.base/iemocap "{"a" * 36}... -> "{"b" * 36}...', "seed 0 -> null"]


def test_fewer_than_six_paired_items_are_never_called_worse(tmp_path):
    """Two items that both got worse: the bootstrap's interval is the two changes, so it excluded
    zero and a ``--limit 2`` run failed its gate on nothing."""
    few = dict(list(VOTES.items())[:5])
    perfect = dataclasses.replace(record(lambda v: v / v.sum()), items=tuple(
        ItemRecord(i, tuple((v / v.sum()).tolist())) for i, v in few.items()))
    noisy = dataclasses.replace(perfect, items=tuple(ItemRecord(i, (1 / 3,) * 3) for i in few))
    verdict = gate(noisy, few, save_baseline(perfect, tmp_path, few))
    assert verdict.failures == [] and {c.verdict for c in verdict.changes} == {"same"}
    assert verdict.summary.endswith("(5 paired items, too few for any change to be significant "
                                    "(fewer than 6))")
    six = dict(list(VOTES.items())[:6])
    assert regressions(record(lambda v: np.full(3, 1 / 3)), six,
                       save_baseline(record(lambda v: v / v.sum()), tmp_path / "six", six)) != []
