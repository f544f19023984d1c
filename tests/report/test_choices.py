"""A setting's choices side by side: W-BoN under each α, ALM-v under each tie rule; a cell's
invalid items left out or scored as a uniform guess."""

import dataclasses

from harness.report.choices import alpha_table, invalid_table, ties_table
from harness.report.tables import TABLES
from tests.report.test_tables import cell


def test_the_alpha_table_gives_each_choice_s_change_from_raw_and_marks_a_clear_one():
    base = cell("a", "iemocap", "w-bon", 0.3, 0.7, 0.3)
    table = {"raw": {"n": 26, "js": 0.50, "bc": 0.65, "r2": 0.45},
             "mean": {"n": 26, "js": 0.51, "bc": 0.64, "r2": 0.37, "js_change_ci": [0.003, 0.015],
                      "bc_change_ci": [-0.02, 0.0], "r2_change_ci": [-0.1, -0.05]},  # BC's
             # interval reaches zero: that is not excluding it
             "uniform": {"js": 0.52, "bc": 0.63, "r2": 0.36}}  # a record from before the CIs
    scored = dataclasses.replace(base, metrics=dataclasses.replace(base.metrics,
                                                                    alpha_sensitivity=table))
    header, [row] = alpha_table([scored])
    texts = dict(zip(header, (t for t, _ in row)))
    assert texts["JS raw"] == "0.5000" and texts["JS mean"] == "0.5100 (+0.0100*)"
    assert texts["BC mean"] == "0.6400 (-0.0100)" and texts["R² mean"] == "0.3700 (-0.0800*)"
    assert texts["JS uniform"] == "0.5200"
    assert header[-3:] == ["max weight raw", "max weight mean", "max weight uniform"]
    assert texts["max weight raw"] == "–"  # a record from before it was kept
    table["raw"]["weight_max"], table["mean"]["weight_max"] = 0.35, 0.2
    texts = dict(zip(header, (t for t, _ in alpha_table([scored])[1][0])))
    assert (texts["max weight raw"], texts["max weight mean"]) == ("0.3500", "0.2000")
    table["mean"]["r2_change_p"], table["mean"]["js_change_p"] = 0.06, 0.05  # the sign-flip test's
    header, [row] = alpha_table([scored])
    texts = dict(zip(header, (t for t, _ in row)))
    assert texts["R² mean"] == "0.3700 (-0.0800)" and texts["JS mean"] == "0.5100 (+0.0100*)"
    table["uniform"] = {"n": 6, "js": 0.52, "bc": 0.66, "r2": 0.47, "js_change_ci": [0.0, 0.03],
                        "bc_change_ci": [-0.01, 0.02], "r2_change_ci": [0.01, 0.03]}
    header, [row] = alpha_table([scored])  # six paired items are enough; a bound at 0 is not
    texts = dict(zip(header, (t for t, _ in row)))
    assert (texts["JS uniform"], texts["BC uniform"], texts["R² uniform"]) == (
        "0.5200 (+0.0200)", "0.6600 (+0.0100)", "0.4700 (+0.0200*)")


def test_the_ties_table_gives_alm_v_under_each_tie_rule_and_the_rule_it_ran_under():
    base = cell("a", "crema_d", "alm-v", 0.43, 0.75, 0.23)
    ties = {"first": {"n": 26, "js": 0.4263, "bc": 0.7544, "r2": 0.2317},
            "mean": {"n": 26, "js": 0.4238, "bc": 0.7584, "r2": 0.2672,
                     "js_change_ci": [-0.006, -0.001], "bc_change_ci": [0.001, 0.007],
                     "r2_change_ci": [-0.01, 0.08], "js_change_p": 0.02, "bc_change_p": 0.2}}
    use = {"scored": 78, "items": 26, "top_shared": 26, "all_equal": 26, "common": [[0.9, 78]],
           "ties": ties}
    ran = dataclasses.replace(base, metrics=dataclasses.replace(base.metrics, verifier=use),
                              meta={"strategy_config": {"verifier_ties": "mean"}})
    unscored = dataclasses.replace(ran, model="b", metrics=dataclasses.replace(
        base.metrics, verifier={k: v for k, v in use.items() if k != "ties"}))
    header, [row] = ties_table([ran, unscored, base])  # a row where the record keeps the rules
    texts = dict(zip(header, (t for t, _ in row)))
    assert header[:3] == ["Model", "Dataset", "verifier_ties used"]
    assert (texts["Model"], texts["verifier_ties used"]) == ("a", "mean")
    assert (texts["JS first"], texts["JS mean"]) == ("0.4263", "0.4238 (-0.0025*)")
    assert texts["BC mean"] == "0.7584 (+0.0040)"  # its sign-flip test does not agree
    assert texts["R² mean"] == "0.2672 (+0.0355)"  # its CI holds 0
    assert "ties" in TABLES and TABLES["ties"]([ran])[1] == [row]


def test_the_invalid_table_gives_each_reading_of_a_cell_s_invalid_items_with_its_interval():
    base = cell("a", "crema_d", "base", 0.3, 0.7, 0.3)
    invalid = {"left_out": {"n": 18, "js": 0.3, "bc": 0.7, "r2": 0.3},
               "uniform": {"n": 26, "js": 0.41, "bc": 0.62, "r2": None, "js_ci": [0.38, 0.44],
                           "bc_ci": None}}
    partly = dataclasses.replace(base, metrics=dataclasses.replace(
        base.metrics, n_valid=18, n_items=26, invalid=invalid))
    header, rows = invalid_table([base, partly])  # a cell whose items are all valid: no row
    assert header[:4] == ["Model", "Dataset", "Strategy", "valid"] and len(rows) == 1
    texts = dict(zip(header, (t for t, _ in rows[0])))
    low, high = base.metrics.scores["js"].ci95
    assert texts["valid"] == "18 of 26"
    assert texts["JS left out"] == f"0.3000 [{low:.4f}, {high:.4f}]"  # the cell's own interval
    assert texts["JS uniform"] == "0.4100 [0.3800, 0.4400]"
    assert texts["BC uniform"] == "0.6200" and texts["R² uniform"] == "–"
    assert TABLES["invalid"] is invalid_table


def test_a_cell_run_with_invalid_uniform_shows_its_left_out_means_without_its_own_interval():
    base = cell("a", "crema_d", "base", 0.41, 0.62, 0.2)
    invalid = {"left_out": {"n": 18, "js": 0.3, "bc": 0.7, "r2": 0.3},
               "uniform": {"n": 26, "js": 0.41, "bc": 0.62, "r2": 0.2, "js_ci": [0.38, 0.44]}}
    guessing = dataclasses.replace(
        base, metrics=dataclasses.replace(base.metrics, n_valid=18, n_items=26, invalid=invalid,
                                          rules={"json_dict": 18, "uniform_guess": 8}),
        meta={**base.meta, "strategy_config": {"invalid": "uniform"}})  # as such a run's
    header, [row] = invalid_table([guessing])
    texts = dict(zip(header, (t for t, _ in row)))
    assert texts["JS left out"] == "0.3000"  # the cell's own interval is the uniform reading's
    assert texts["valid"] == "18 of 26, 8 as uniform guesses"
    assert texts["JS uniform"] == "0.4100 [0.3800, 0.4400]"
