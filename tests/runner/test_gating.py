import dataclasses

import numpy as np

from bench.gate_null import null_updates
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
    assert verdict.summary.endswith("(40 paired items, 98% CIs)")
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
    two = dict(list(VOTES.items())[:2])  # the fewest a baseline can be compared on
    both_failed = dataclasses.replace(failed, items=tuple(ItemRecord(i, None) for i in two))
    assert gate(both_failed, two, save_baseline(record(lambda v: v / v.sum()), tmp_path / "two",
                                                two)).failures == [
        "not compared: the run scored 0 of the 2 items the baseline scored, fewer than 2"]


def test_a_run_given_other_inputs_than_its_baseline_says_which(tmp_path):
    def given(beams, revision):
        meta = {"model": {"revision": revision}, "strategy_config": {"beams": beams, "tau": 1.0},
                "decoding": {"mode": "beam"}}
        return dataclasses.replace(record(lambda v: v / v.sum()), meta=meta)

    path = save_baseline(given(5, "r1"), tmp_path, VOTES, inputs_of(given(5, "r1")))
    verdict = gate(given(1, "r2"), VOTES, path)
    assert verdict.other_inputs == ("strategy_config.beams 5 -> 1",)  # the revision: named apart
    assert verdict.summary.startswith("m-d-s: model revision r1 -> r2: ")
    assert verdict.summary.endswith("(40 paired items, none of whose scores changed); unlike the "
                                    "baseline's inputs: "
                                    "strategy_config.beams 5 -> 1")
    assert gate(given(5, "r1"), VOTES, path).inputs_note == ""
    many = given(1, "r2")
    many = dataclasses.replace(many, meta=dict(many.meta, seed=1, verifier="judge", model={
        "revision": "r2", "dtype": "bf16"}, dataset={"options": {"split": "Test1"}}))
    assert gate(many, VOTES, path).inputs_note == (  # five other inputs: four named, one counted
        'unlike the baseline\'s inputs: dtype null -> "bf16", options.split null -> "Test1", '
        'seed null -> 1, strategy_config.beams 5 -> 1 and 1 more')
    unrecorded = save_baseline(given(5, "r1"), tmp_path / "old", VOTES)  # inputs not recorded
    assert gate(given(1, "r1"), VOTES, unrecorded).inputs_note == ""


def test_an_api_alias_answered_by_another_snapshot_is_another_input_and_another_snapshot_key(
        tmp_path):
    """``gpt-4o-audio-preview`` moved from one snapshot to the next: the revision (the alias) is
    the same, but the run is not the baseline's model, and its snapshot key differs."""
    from harness.runner.snapshots import snapshot_key

    def served(*names):
        meta = {"model": {"revision": "gpt-4o-audio-preview"},
                "served_by": {"gpt-4o": {name: 20 for name in names}}}
        return dataclasses.replace(record(lambda v: v / v.sum()), meta=meta)

    path = save_baseline(served("s-2024"), tmp_path, VOTES, inputs_of(served("s-2024")))
    assert gate(served("s-2025"), VOTES, path).other_inputs == (
        'served_by.gpt-4o ["s-2024"] -> ["s-2025"]',)
    assert gate(served("s-2024"), VOTES, path).other_inputs == ()
    assert snapshot_key(served("s-2024")) != snapshot_key(served("s-2025"))
    assert snapshot_key(served("s-2024")) == snapshot_key(served("s-2024"))
    plain = dataclasses.replace(record(lambda v: v / v.sum()), meta={"model": {"revision": "r"}})
    assert "served_by" not in inputs_of(plain)  # a local model's inputs, and keys, as before


def test_input_changes_name_each_nested_input_and_cut_long_values():
    before = {"prompts": {"set": "paper", "templates": {"base/iemocap": "a" * 60}}, "seed": 0}
    after = {"prompts": {"set": "plain", "templates": {"base/iemocap": "b" * 60}}, "dtype": "bf16"}
    assert input_changes(before, after) == [
        'dtype null -> "bf16"', 'prompts.set "paper" -> "plain"',
        f'prompts.templates.base/iemocap "{"a" * 36}... -> "{"b" * 36}...', "seed 0 -> null"]


def test_input_changes_leave_out_what_is_equal_or_named_and_cut_past_40_characters():
    before = {"same": 1, "nested": {"same": 2, "moved": 3}, "left": 5, "text": "x" * 38}
    after = {"same": 1, "nested": {"same": 2, "moved": 4}, "left": 6, "text": "y" * 39}
    assert input_changes(before, after, leave_out=("left",)) == [
        "nested.moved 3 -> 4", f'text "{"x" * 38}" -> "{"y" * 36}...']  # 40 kept, 41 cut
    assert input_changes({"options": {"a": 1}}, {"options": None}) == ['options {"a": 1} -> null']


def test_a_setting_an_older_record_predates_is_read_as_what_runs_did_before_it():
    older = {"strategy_config": {"beams": 5}}  # before verifier_ties: alm-v took the first
    assert input_changes(older, {"strategy_config": {"beams": 5, "verifier_ties": "first"}}) == []
    assert input_changes(older, {"strategy_config": {"beams": 5, "verifier_ties": "mean"}}) == [
        'strategy_config.verifier_ties "first" -> "mean"']
    assert input_changes({"verifier_ties": "first"}, {}) == ['verifier_ties "first" -> null']
    plain = record(lambda v: v / v.sum())
    as_before, mean = ({"beams": 5, "verifier_ties": ties} for ties in ("first", "mean"))
    keys = [inputs_of(dataclasses.replace(plain, meta={"strategy_config": config, "decoding": {}}))
            ["strategy_config"] for config in (as_before, mean, {"beams": 5})]
    assert keys == [{"beams": 5}, mean, {"beams": 5}]  # so a snapshot's key stays what it was


def test_fewer_than_seven_paired_items_are_never_called_worse(tmp_path):
    """Two items that both got worse: the bootstrap's interval is the two changes, so it excluded
    zero and a ``--limit 2`` run failed its gate on nothing. At 98% (1% a tail) the exact
    sign-flip test needs 7 items (2^-7 < 1%); at alpha 0.125 (five 95% intervals), 6."""
    few = dict(list(VOTES.items())[:6])
    perfect = dataclasses.replace(record(lambda v: v / v.sum()), items=tuple(
        ItemRecord(i, tuple((v / v.sum()).tolist())) for i, v in few.items()))
    noisy = dataclasses.replace(perfect, items=tuple(ItemRecord(i, (1 / 3,) * 3) for i in few))
    verdict = gate(noisy, few, save_baseline(perfect, tmp_path, few))
    assert verdict.failures == [] and {c.verdict for c in verdict.changes} == {"same"}
    assert verdict.summary.endswith("(6 paired items, too few for any change to be significant "
                                    "(fewer than 7))")
    assert gate(noisy, few, save_baseline(perfect, tmp_path, few), alpha=0.125).failures != []
    seven = dict(list(VOTES.items())[:7])
    assert regressions(record(lambda v: np.full(3, 1 / 3)), seven,
                       save_baseline(record(lambda v: v / v.sum()), tmp_path / "seven", seven)) != []
    better = gate(record(lambda v: v / v.sum()), seven,  # and the other way round: better
                  save_baseline(record(lambda v: np.full(3, 1 / 3)), tmp_path / "up", seven))
    verdicts = {c.metric: c.verdict for c in better.changes}  # acc: 3 of the 7 were right before
    assert verdicts == {"js": "better", "jsd": "better", "bc": "better", "r2": "better",
                        "acc": "same"} and better.failures == []


def test_a_change_rests_on_the_items_whose_scores_changed_not_on_every_paired_item(tmp_path):
    """40 paired items of which 5 got worse and 35 stayed put: the plain bootstrap over the 40
    excluded zero (a resample misses all 5 only e^-5 of the time), though the exact sign-flip
    test gives 5 of 5 worse 2^-5 = 3%, three times the 1% tail. Not called worse; 9 are."""
    def worse_on(count):
        return record(lambda v: v / v.sum()) if count == 0 else dataclasses.replace(
            record(lambda v: v / v.sum()), items=tuple(
                ItemRecord(i, (1 / 3,) * 3 if k < count else tuple((v / v.sum()).tolist()))
                for k, (i, v) in enumerate(VOTES.items())))

    path = save_baseline(worse_on(0), tmp_path, VOTES)
    five = gate(worse_on(5), VOTES, path)  # acc: 3 of the 5 answers' top class changed
    assert five.failures == []
    assert {c.metric: c.items_changed for c in five.changes} == {
        "js": 5, "jsd": 5, "bc": 5, "r2": 5, "acc": 3}
    assert five.summary.endswith("(40 paired items, 5 of them changed, too few for any change to "
                                 "be significant (fewer than 7))")
    from harness.runner.baseline_file import item_scores
    from harness.runner.gating import paired_changes

    old = item_scores({i.id: i.probs for i in worse_on(0).items}, VOTES)
    new = item_scores({i.id: i.probs for i in worse_on(5).items}, VOTES)
    plain = [c for c in paired_changes(old, new, interval="percentile") if c.metric != "acc"]
    assert {c.verdict for c in plain} == {"worse"}  # the plain intervals: the gate as it was
    assert all(np.isnan(c.p_worse) for c in plain)  # (it counted paired items, tested no signs)
    expanded = paired_changes(old, new)
    assert {c.p_worse for c in expanded if c.metric != "acc"} == {2 ** -5}  # 5 of 5 went worse
    nine = gate(worse_on(9), VOTES, path)  # acc: 6 changed, still too few
    assert [f.split(":")[0] for f in nine.failures] == ["js", "jsd", "bc", "r2"]
    assert nine.failures[0].endswith("on 40 paired items, 9 of them changed (sign-flip p 0.002)")


def test_an_update_that_changes_nothing_systematically_fails_a_cell_at_most_alpha_of_the_time():
    """Five separate plain 95% intervals failed such a cell about 10% of the time; held
    together at 95% (98% each), expanded and with the sign-flip test, about 5% (``python -m
    bench.gate_null`` gives more draws)."""
    from harness.runner.gating import paired_changes

    together, apart = 0, 0
    trials = 200
    for k, (old, new) in enumerate(null_updates(trials, 30)):
        together += any(c.verdict == "worse" for c in paired_changes(old, new, seed=k))
        apart += any(c.verdict == "worse" for c in paired_changes(old, new, seed=k, alpha=0.125,
                                                                   interval="percentile"))
    assert together / trials <= 0.07 < apart / trials  # alpha 0.125: five 95% intervals


def test_the_intervals_level_is_said_and_alpha_sets_it(tmp_path):
    from harness.runner.gating import family_confidence, items_needed, paired_changes

    assert family_confidence(0.05, 5) == 0.98 and family_confidence(0.05, 4) == 0.975
    assert family_confidence(0.05, 1) == family_confidence(0.05, 0) == 0.9  # one metric: 5% a side
    assert [items_needed(c) for c in (0.95, 0.98, 0.9998)] == [6, 7, 14]
    # a tail of exactly 2^-n: n items give a sign-flip p-value of 2^-n, which is within it
    assert [items_needed(1 - 2 * 2.0 ** -n) for n in (7, 8, 10)] == [7, 8, 10]
    perfect = record(lambda v: v / v.sum())
    path = save_baseline(perfect, tmp_path, VOTES)
    failures = regressions(record(lambda v: np.full(3, 1 / 3)), VOTES, path)
    assert all("98% CI of the change" in f for f in failures)
    strict = regressions(record(lambda v: np.full(3, 1 / 3)), VOTES, path, alpha=0.0005)
    assert all("99.98% CI of the change" in f for f in strict) and len(strict) == 5
    old, new = next(null_updates(1, 30))
    wide = paired_changes(old, new, alpha=0.001)[0]
    usual = paired_changes(old, new)[0]
    assert wide.low < usual.low and wide.high > usual.high  # 20 resamples beyond each end


def test_on_few_items_the_expanded_intervals_hold_the_gate_to_alpha_where_plain_ones_did_not():
    """Null updates of 8 items: the plain percentile intervals, narrow on so few, failed 9% of
    these 200 cells at alpha 5%; the expanded ones (the default) 1.5%."""
    from harness.runner.gating import paired_changes

    failed = {"expanded": 0, "percentile": 0}
    for k, (old, new) in enumerate(null_updates(200, 8, seed=8)):
        for interval in failed:
            failed[interval] += any(c.verdict == "worse"
                                    for c in paired_changes(old, new, seed=k, interval=interval))
    assert failed["expanded"] / 200 <= 0.05 < 0.07 < failed["percentile"] / 200


def test_the_gate_takes_its_intervals_as_the_records_own_were(tmp_path, monkeypatch):
    import harness.runner.gating as gating

    asked = []
    real = gating.paired_changes
    monkeypatch.setattr(gating, "paired_changes",
                        lambda *a, **k: asked.append(k["interval"]) or real(*a, **k))
    perfect = record(lambda v: v / v.sum())
    path = save_baseline(perfect, tmp_path, VOTES)
    for interval in ("percentile", "expanded"):
        run = dataclasses.replace(perfect, metrics=dataclasses.replace(perfect.metrics,
                                                                       interval=interval))
        assert gate(run, VOTES, path).failures == []
    assert asked == ["percentile", "expanded"]
