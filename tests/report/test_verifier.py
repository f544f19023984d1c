import dataclasses

from harness.report.tables import TABLES
from harness.report.terminal import results_lines
from harness.report.verifier import top_shared_lines, verifier_table
from tests.report.test_tables import CELLS, cell


def verified(strategy, use, unscored=0, model="a", **config):
    plain = cell(model, "crema_d", strategy, 0.4, 0.7, 0.3)
    metrics = dataclasses.replace(plain.metrics, verifier=use, verifier_unscored=unscored)
    meta = {"verifier": "gpt-4o", **({"strategy_config": config} if config else {})}
    return dataclasses.replace(plain, metrics=metrics, meta=meta)


SHARED = {"scored": 78, "items": 26, "top_shared": 13, "all_equal": 2,
          "common": [[0.9, 39], [0.8, 31], [0.85, 4], [0.7, 4]]}


def test_each_verified_cell_says_how_its_scores_told_the_candidates_apart():
    weighed = verified("w-alm-v", dict(SHARED, weight_max=0.44))
    header, rows = verifier_table([*CELLS, weighed, verified("alm-v", SHARED, 3)])
    assert [[text for text, _ in row] for row in rows] == [
        ["a", "crema_d", "alm-v", "gpt-4o", "first", "78", "3", "26", "13 (50%)", "2 (8%)", "",
         "0.9 (50%), 0.8 (40%), 0.85 (5%)"],  # the three commonest
        ["a", "crema_d", "w-alm-v", "gpt-4o", "", "78", "0", "26", "13 (50%)", "2 (8%)", "0.4400",
         "0.9 (50%), 0.8 (40%), 0.85 (5%)"]]
    assert header[-4:] == ["top shared", "all alike", "max weight", "commonest scores"]
    assert verifier_table(CELLS) == (header, [])  # no verifier: no row
    none_compared = verified("alm-v", {"scored": 0, "items": 0, "top_shared": 0, "all_equal": 0,
                                       "common": []})
    assert [t for t, _ in verifier_table([none_compared])[1][0]][5:] == ["0", "0", "0", "0", "0", "", ""]


def test_the_terminal_says_where_alm_v_s_pick_fell_to_beam_order():
    cells = [cell("a", "crema_d", "base", 0.4, 0.7, 0.3), verified("alm-v", SHARED),
             verified("w-alm-v", SHARED)]
    lines = results_lines(cells, {name: TABLES[name](cells) for name in ("strategies", "items")})
    said = " ".join(" ".join(lines).split())
    assert "alm-v fell back to its likeliest beam (beam order, as bon picks) where two " \
           "candidates or more shared its verifier's top score: a crema_d 13 of 26 items (the " \
           "verifier and ties tables" in said
    assert top_shared_lines(cells) == "a crema_d 13 of 26 items"  # alm-v's cells alone
    apart = verified("alm-v", dict(SHARED, top_shared=0, all_equal=0))
    assert top_shared_lines([apart]) == ""
    assert "likeliest beam" not in " ".join(results_lines([cells[0], apart], {
        name: TABLES[name]([cells[0], apart]) for name in ("strategies", "items")}))


def test_an_alm_v_that_averaged_tied_candidates_is_said_apart_from_one_that_took_the_first():
    mean = verified("alm-v", SHARED, model="b", verifier_ties="mean", beams=5)
    first = verified("alm-v", SHARED, verifier_ties="first")
    cells = [cell("a", "crema_d", "base", 0.4, 0.7, 0.3), first, mean]
    assert [row[4][0] for row in verifier_table(cells)[1]] == ["first", "mean"]
    assert top_shared_lines(cells, "mean") == "b crema_d 13 of 26 items"
    assert top_shared_lines(cells) == "a crema_d 13 of 26 items"
    lines = results_lines(cells, {name: TABLES[name](cells) for name in ("strategies", "items")})
    said = " ".join(" ".join(lines).split())
    assert "alm-v took the mean of the tied candidates (verifier_ties mean) where two candidates " \
           "or more shared its verifier's top score: b crema_d 13 of 26 items" in said
    assert "likeliest beam (beam order, as bon picks) where two candidates or more shared its " \
           "verifier's top score: a crema_d 13 of 26 items (" in said
