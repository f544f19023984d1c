"""The gate's edges, on per-item scores given directly: the alpha it accepts, the fewest pairs a
metric is compared on, a sign-flip test that disagrees with the interval, the tolerance on either
side, and the verdict's wording at its thresholds. (Each test kills mutants of
:mod:`harness.runner.gating` that the behavioural tests in ``test_gating.py`` left alive.)"""

import pytest

from harness.runner.gating import GATED, GateVerdict, family_confidence, paired_changes


def scores(*per_item: float, names: tuple[str, ...] = GATED) -> dict[str, dict[str, float]]:
    """Item id -> each metric's score: the same value for every metric of an item."""
    return {f"i{k}": dict.fromkeys(names, value) for k, value in enumerate(per_item)}


@pytest.mark.parametrize("alpha", [0.0, -0.1, 0.51, 1.0])
def test_alpha_is_above_zero_and_at_most_one_half(alpha):
    with pytest.raises(ValueError, match=f"at most 0.5, not {alpha!r}"):
        family_confidence(alpha, 5)


def test_alpha_of_one_half_is_accepted_and_split_over_the_metrics():
    assert family_confidence(0.5, 5) == pytest.approx(0.8)
    assert family_confidence(0.05, 0) == pytest.approx(0.9)  # no metric: as if one


def test_a_metric_is_compared_on_two_finite_pairs_and_left_out_on_one():
    nan = float("nan")
    old = {"a": {"js": 0.1, "bc": 0.5, "r2": 0.5}, "b": {"js": 0.2, "bc": 0.6, "r2": nan},
           "c": {"js": 0.3}}
    new = {"a": {"js": 0.1, "bc": 0.5, "r2": 0.5}, "b": {"js": 0.2, "bc": 0.5, "r2": 0.5},
           "c": {"js": 0.3, "bc": 0.5, "r2": 0.5}}
    changes = paired_changes(old, new, names=("js", "bc", "r2"))
    assert [(c.metric, c.n) for c in changes] == [("js", 3), ("bc", 2)]


def test_the_default_resamples_and_seed_are_one_thousand_and_zero():
    old, new = scores(*[0.3] * 30), scores(*[0.3 + 0.01 * (k % 7 - 2) for k in range(30)])
    at_80 = {"alpha": 0.5}  # 80% intervals: at 98% the draws are raised to 2,000 whatever is asked
    assert paired_changes(old, new, **at_80) == paired_changes(old, new, n_resamples=1000, seed=0,
                                                               **at_80)
    assert paired_changes(old, new, seed=1, **at_80) != paired_changes(old, new, **at_80)
    assert paired_changes(old, new, n_resamples=1001, **at_80) != paired_changes(old, new,
                                                                                  **at_80)


def test_seven_changes_one_of_them_slightly_the_other_way_are_not_worse_by_the_sign_flip_test():
    """Six items 0.1 worse and one 0.001 better: the bootstrap's 98% interval lies above zero,
    but flipping the signs gives a mean as far up 2 times in 128 (1.6%, above the 1% tail)."""
    old = scores(*[0.3] * 7)
    new = scores(*[0.4] * 6, 0.299)
    changes = {c.metric: c for c in paired_changes(old, new)}
    js, bc = changes["js"], changes["bc"]  # the same change: worse for JS, better for BC
    assert js.low > 0 and js.p_worse == pytest.approx(2 / 128) and js.verdict == "same"
    assert bc.low > 0 and bc.p_better == pytest.approx(2 / 128) and bc.verdict == "same"
    verdict = GateVerdict("m-d-s", None, None, tuple(changes.values()), (7, 7))
    assert verdict.failures == [] and verdict.summary.endswith("(7 paired items, 98% CIs)")


def test_an_interval_that_holds_zero_is_not_tested_and_its_p_values_are_one():
    changes = paired_changes(scores(*[0.3] * 10), scores(*[0.4, 0.2] * 5))
    assert {(c.verdict, c.p_worse, c.p_better) for c in changes} == {("same", 1.0, 1.0)}


def test_five_changed_items_at_alpha_one_half_are_still_too_few_to_be_better():
    """At alpha 0.5 each interval is 80%: 2^-5 is inside its 10% tail, yet no change is judged
    on fewer than six items that changed."""
    changes = paired_changes(scores(*[0.5] * 5), scores(*[0.3] * 5), alpha=0.5)
    assert {c.verdict for c in changes} == {"same"} and {c.needed for c in changes} == {6}
    six = paired_changes(scores(*[0.5] * 6), scores(*[0.3] * 6), alpha=0.5)
    assert {c.metric: c.verdict for c in six} == {
        "js": "better", "jsd": "better", "bc": "worse", "r2": "worse", "acc": "worse"}


@pytest.mark.parametrize(("metric", "move"), [("js", 0.03), ("bc", -0.03)])
def test_a_tolerance_above_the_change_absorbs_it_on_either_kind_of_metric(metric, move):
    old, new = scores(*[0.5] * 10, names=(metric,)), scores(*[0.5 + move] * 10, names=(metric,))
    assert paired_changes(old, new, tolerance=0.02, names=(metric,))[0].verdict == "worse"
    kept = paired_changes(old, new, tolerance=0.04, names=(metric,))
    assert kept[0].verdict == "same"
    summary = GateVerdict("m-d-s", None, None, tuple(kept), (10, 10)).summary  # one metric: one
    assert summary.endswith("(10 paired items, 90% CIs)")  # interval at 1 - alpha, not two at 95%


def test_changed_items_just_at_the_number_needed_are_judged_by_the_intervals():
    changes = paired_changes(scores(*[0.3] * 40), scores(*[0.4] * 7, *[0.3] * 33))
    verdict = GateVerdict("m-d-s", None, None, tuple(changes), (40, 40))
    assert {c.items_changed for c in changes} == {7}
    assert verdict.summary.endswith("(40 paired items, 98% CIs)")


@pytest.mark.parametrize(("count", "note"), [
    (4, "unlike the baseline's inputs: a, b, c, d"),
    (5, "unlike the baseline's inputs: a, b, c, d and 1 more"),
])
def test_the_first_four_other_inputs_are_named_and_the_rest_counted(count, note):
    verdict = GateVerdict("m-d-s", None, None, (), other_inputs=tuple("abcde"[:count]))
    assert verdict.inputs_note == note and verdict.summary.endswith(f"; {note}")


@pytest.mark.parametrize(("old", "new", "verdict"), [(0.25, 0.5, "worse"), (0.5, 0.25, "better")])
def test_a_sign_flip_p_just_at_the_interval_s_tail_is_significant(old, new, verdict):
    """One metric at alpha 2^-6: its interval's tail is 2^-6, the exact test's p over six items
    that all moved one way; p at the tail (not above it) agrees with the interval."""
    change, = paired_changes(scores(*[old] * 6, names=("js",)), scores(*[new] * 6, names=("js",)),
                             names=("js",), alpha=2 ** -6)
    assert (change.confidence, change.needed, change.low, change.high) == (1 - 2 ** -5, 6, new - old,
                                                                           new - old)
    assert min(change.p_worse, change.p_better) == 2 ** -6 and change.verdict == verdict


def test_an_interval_ending_just_at_the_tolerance_is_not_beyond_it():
    old, new = scores(*[0.25] * 8, names=("js",)), scores(*[0.5] * 8, names=("js",))
    at = 0.25 - 1e-6  # plus the noise floor: the interval's end, 0.25, exactly
    assert paired_changes(old, new, tolerance=at, names=("js",))[0].verdict == "same"
    assert paired_changes(old, new, tolerance=at - 1e-9, names=("js",))[0].verdict == "worse"


def test_the_gate_s_defaults_are_paired_changes_own():
    import inspect

    from harness.runner.gating import gate, regressions

    def defaults(function):
        parameters = inspect.signature(function).parameters
        return {name: parameters[name].default for name in ("tolerance", "n_resamples", "seed",
                                                            "alpha")}

    assert defaults(gate) == defaults(regressions) == defaults(paired_changes) == {
        "tolerance": 0.0, "n_resamples": 1000, "seed": 0, "alpha": 0.05}


def test_a_change_and_a_verdict_are_values_read_at_95_percent_unless_told():
    import dataclasses

    from harness.runner.gating import MetricChange

    change = MetricChange("js", 0.1, 0.2, 0.05, 0.15, 10, "worse")
    assert change.describe() == ("js: baseline 0.1000 -> 0.2000, 95% CI of the change "
                                 "[+0.0500, +0.1500] on 10 paired items")
    for value, field in ((change, "verdict"), (GateVerdict("c", None, None, ()), "cell")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, "x")
