import dataclasses

from harness.record import CellMetrics, CellRecord, Estimate, ItemRecord
from harness.report.legends import LEGENDS
from harness.report.tables import (
    ambiguity_table,
    classification_table,
    compute_table,
    csv_text,
    latex,
    main_table,
    markdown,
    strategy_table,
)


def cell(model, dataset, strategy, js, bc, r2, spread=0.0, phase=0):
    """A record whose 10 items score ``value ± spread`` (mean exactly ``value``) on each metric."""
    scores = {name: Estimate(value, (value, value)) for name, value in (("js", js), ("bc", bc),
                                                                          ("r2", r2))}
    items = tuple(ItemRecord(f"i{k}", (0.5, 0.5), scores={
        name: value + (spread if (k + phase) % 2 else -spread) for name, value in (("js", js), ("bc", bc),
                                                                          ("r2", r2))})
        for k in range(10))
    return CellRecord(f"{model}-{dataset}-{strategy}", model, dataset, strategy, ("x", "y"),
                      CellMetrics(10, 10, 1.0, scores, tokens=100), 0.0, 0.0, items, {})


CELLS = [cell("a", "iemocap", "base", 0.40, 0.70, 0.30), cell("b", "iemocap", "base", 0.30, 0.80, 0.20),
         cell("c", "iemocap", "base", 0.35, 0.60, 0.40), cell("a", "iemocap", "w-bon", 0.3364, 0.75, 0.33)]


def test_main_table_marks_best_and_second_per_column():
    header, rows = main_table(CELLS)
    assert header == ["Model", "iemocap JS", "iemocap BC", "iemocap R²"]
    js = {row[0][0]: row[1] for row in rows}
    assert js["b"] == ("0.3000 [0.3000, 0.3000]", "best") and js["c"][1] == "second"
    assert js["a"][1] == ""
    r2 = {row[0][0]: row[3] for row in rows}
    assert r2["c"][1] == "best" and r2["a"][1] == "second"


def test_a_cell_with_items_left_invalid_says_over_how_many_its_mean_is():
    partial = cell("d", "iemocap", "base", 0.2, 0.9, 0.5)
    partial = dataclasses.replace(partial, metrics=dataclasses.replace(partial.metrics, n_valid=6))
    rows = {row[0][0]: row for row in main_table(CELLS + [partial])[1]}
    assert rows["d"][1][0] == "0.2000 [0.2000, 0.2000] (valid 6 of 10)"
    assert rows["b"][1][0] == "0.3000 [0.3000, 0.3000]"  # every item valid: nothing added
    guessing = dataclasses.replace(partial, metrics=dataclasses.replace(
        partial.metrics, rules={"json_dict": 6, "uniform_guess": 3}))  # invalid="uniform"
    rows = {row[0][0]: row for row in main_table(CELLS + [guessing])[1]}
    assert rows["d"][1][0] == "0.2000 [0.2000, 0.2000] (valid 6 of 10, 3 as uniform guesses)"
    damaged = dataclasses.replace(partial, metrics=dataclasses.replace(
        partial.metrics, rules={"uniform_guess": "3"}))  # a record's count that is not one
    rows = {row[0][0]: row for row in main_table(CELLS + [damaged])[1]}
    assert rows["d"][1][0] == "0.2000 [0.2000, 0.2000] (valid 6 of 10)"


def test_strategy_table_shows_the_paired_change_against_base_and_its_significance():
    _, rows = strategy_table(CELLS)
    wbon = next(r for r in rows if r[2][0] == "w-bon")
    assert wbon[3][0] == "0.3364 (+15.9*)"  # JS: lower is better; every item moved the same way
    assert wbon[4][0] == "0.7500 (+7.1*)" and wbon[-1][0] == "10"
    noisy = [cell("a", "iemocap", "base", 0.40, 0.70, 0.30, spread=0.3),
             cell("a", "iemocap", "w-bon", 0.39, 0.70, 0.30, spread=0.3, phase=1)]
    _, rows = strategy_table(noisy)
    assert next(r for r in rows if r[2][0] == "w-bon")[3][0] == "0.3900 (+2.5)"  # within noise
    worse = [CELLS[0], cell("a", "iemocap", "bon", 0.44, 0.63, 0.30)]  # every item worse
    bon = next(r for r in strategy_table(worse)[1] if r[2][0] == "bon")
    assert bon[3][0] == "0.4400 (-10.0*)" and bon[4][0] == "0.6300 (-10.0*)"  # marked as well


def test_a_change_on_fewer_than_six_paired_items_is_never_marked_significant():
    """Every item moved the same way, yet on 5 items an exact sign-flip test cannot reach 2.5%
    a tail (its smallest p is 2^-5): the bootstrap's interval excludes zero, the mark is not given."""
    few = [dataclasses.replace(c, items=c.items[:n]) for c, n in ((CELLS[0], 5), (CELLS[3], 5))]
    wbon = next(r for r in strategy_table(few)[1] if r[2][0] == "w-bon")
    assert wbon[3][0] == "0.3364 (+15.9)" and wbon[-1][0] == "5"
    six = [dataclasses.replace(c, items=c.items[:6]) for c in (CELLS[0], CELLS[3])]
    assert next(r for r in strategy_table(six)[1] if r[2][0] == "w-bon")[3][0] == "0.3364 (+15.9*)"


def test_a_strategy_is_compared_on_the_items_valid_in_both():
    base = cell("a", "iemocap", "base", 0.40, 0.70, 0.30)
    strategy = cell("a", "iemocap", "bon", 0.30, 0.70, 0.30)
    items = list(strategy.items)
    items[0] = ItemRecord("i0", None)  # invalid in the strategy's cell: left out of the pair
    strategy = CellRecord(strategy.cell, "a", "iemocap", "bon", ("x", "y"), strategy.metrics, 0.0,
                          0.0, tuple(items), {})
    _, rows = strategy_table([base, strategy])
    assert next(r for r in rows if r[2][0] == "bon")[-1][0] == "9"


def test_renderers():
    header, rows = main_table(CELLS)
    md = markdown(header, rows)
    assert "**0.3000 [0.3000, 0.3000]**" in md and "<u>0.3500 [0.3500, 0.3500]</u>" in md
    tex = latex(header, rows)
    assert "\\textbf{0.3000 [0.3000, 0.3000]}" in tex and "R$^2$" in tex
    assert tex.endswith("\\end{tabular}")
    assert csv_text(header, rows).splitlines()[1].startswith('a,"0.4000 [0.4000, 0.4000]"')


def test_the_main_table_follows_the_papers_corpus_order_and_does_not_rank_baselines():
    cells = [cell("a", "crema_d", "base", 0.40, 0.70, 0.30), cell("a", "iemocap", "base", 0.40, 0.70, 0.30),
             cell("uniform", "iemocap", "base", 0.10, 0.90, 0.90),
             cell("b", "iemocap", "base", 0.45, 0.60, 0.20)]
    header, rows = main_table(cells)
    assert header[1:] == ["iemocap JS", "iemocap BC", "iemocap R²", "crema_d JS", "crema_d BC",
                          "crema_d R²"]
    marks = {row[0][0]: row[1][1] for row in rows}
    assert marks == {"a": "best", "uniform": "", "b": "second"}  # uniform is better but not ranked


def test_a_cell_on_another_item_set_says_so_and_is_not_ranked():
    """Merged runs: one model's cell on a session subset beside the others' on the whole corpus."""
    import dataclasses

    whole = {"dataset": {"options": {}}}
    cells = [dataclasses.replace(cell("a", "iemocap", "base", 0.40, 0.70, 0.30), meta=whole),
             dataclasses.replace(cell("b", "iemocap", "base", 0.45, 0.60, 0.20), meta=whole),
             cell("c", "iemocap", "base", 0.10, 0.90, 0.90)]
    cells[2] = dataclasses.replace(cells[2], meta={"dataset": {"options": {"sessions": [1]}}},
                                   metrics=dataclasses.replace(cells[2].metrics, n_items=1800,
                                                                  n_valid=1800))
    _, rows = main_table(cells)
    js = {row[0][0]: row[1] for row in rows}
    assert js["c"] == ('0.1000 [0.1000, 0.1000] (on 1,800 items, options {"sessions": [1]})', "")
    assert js["a"] == ("0.4000 [0.4000, 0.4000]", "best") and js["b"][1] == "second"
    _, rows = main_table(cells[:2])  # one item set: nothing said
    assert all("items" not in text for row in rows for text, _ in row[1:])


def test_the_change_a_cell_is_written_with_is_read_back_from_its_text():
    from harness.report.paired import PairedChange, change_suffix, with_change

    change = PairedChange(0.4, 0.3364, 15.9, 3.0, 28.0, 10)
    assert with_change(change) == "0.3364 (+15.9*)"
    assert change_suffix(with_change(change)) == " (+15.9*)" and change_suffix("0.4000") == ""
    from_zero = PairedChange(0.0, 0.3781, 0.3781, 0.2, 0.5, 10, relative=False)
    assert with_change(from_zero) == "0.3781 (base 0, +0.3781*)"  # no %, the difference
    assert change_suffix(with_change(from_zero)) == " (base 0, +0.3781*)"


def _with_dataset(c, dataset):
    return CellRecord(c.cell, c.model, c.dataset, c.strategy, c.labels, c.metrics, 0.0, 0.0,
                      c.items, {"dataset": dataset})


def test_the_items_table_says_what_the_loader_left_out():
    from harness.report.tables import items_table

    left = {"skipped": {"consensus 'xxx' not in the classes": 2, "consensus 'fru'": 4},
            "problems": {"error": 2, "warning": 1}, "first_problems": ["error: f:3: bad"]}
    base = {"n_items": 24, "root": "/r", "options": {}}
    header, [row] = items_table([_with_dataset(CELLS[0], {**base, "left_out": left})])
    assert header[3] == "left out by the loader"
    assert [text for text, _ in row] == ["iemocap", "{}", "24", "6 on purpose; 2 problems dropped data",
                                         "4,373", "no: 4,349 fewer items"]
    more, same = ({**base, "n_items": n} for n in (4400, 4373))
    assert items_table([_with_dataset(CELLS[0], more)])[1][0][5][0] == "no: 27 more items"
    assert items_table([_with_dataset(CELLS[0], same)])[1][0][5][0] == "same N"
    clean = {"skipped": {}, "problems": {"error": 0, "warning": 0}, "first_problems": []}
    assert items_table([_with_dataset(CELLS[0], {**base, "left_out": clean})])[1][0][3][0] == "none"
    assert items_table([_with_dataset(CELLS[0], base)])[1][0][3][0] == ""  # an older record
    for hostile in ("x", {"skipped": [1], "problems": "many"}, {"skipped": {"a": -3, "b": True},
                                                                "problems": {"error": 1.5}}):
        [row] = items_table([_with_dataset(CELLS[0], {**base, "left_out": hostile})])[1]
        assert row[3][0] in ("", "none")


def test_the_compute_table_says_how_much_of_each_cell_came_from_the_cache():
    """A cell's seconds count only what it computed: w-bon reading bon's beams is no cheaper."""
    def timed(c, seconds, calls):
        return dataclasses.replace(c, seconds=seconds, meta={"generations": calls} if calls else {})

    header, rows = compute_table([
        timed(cell("a", "iemocap", "bon", 0.3, 0.7, 0.3), 5.0, {"computed": 10, "from_cache": 0}),
        timed(cell("a", "iemocap", "w-bon", 0.3, 0.7, 0.3), 0.01, {"computed": 0, "from_cache": 10}),
        timed(cell("a", "iemocap", "alm-v", 0.3, 0.7, 0.3), 2.0, {"computed": 30, "from_cache": 10}),
        timed(cell("b", "iemocap", "base", 0.3, 0.7, 0.3), 1.0, None),  # an older record
        timed(cell("c", "iemocap", "base", 0.3, 0.7, 0.3), 1.0, {"computed": 0, "from_cache": -1})])
    assert header[3:8] == ["tokens/item", "s/item", "GPU-s/item", "USD/item", "from cache"]
    said = {(row[0][0], row[2][0]): (row[4][0], row[7][0]) for row in rows}
    assert said == {("a", "alm-v"): ("0.2000", "25%"), ("a", "bon"): ("0.5000", "0%"),
                    ("a", "w-bon"): ("0.0010", "100%"), ("b", "base"): ("0.1000", "–"),
                    ("c", "base"): ("0.1000", "–")}
    assert "'from cache' is the share it read instead" in LEGENDS["compute"]
    priced = cell("d", "iemocap", "base", 0.3, 0.7, 0.3)  # 10 items, 100 tokens
    priced = dataclasses.replace(priced, seconds=4.0, gpu_seconds=2.5, metrics=dataclasses.replace(
        priced.metrics, cost_usd=0.05))
    [row] = compute_table([priced])[1]
    assert [text for text, _ in row[3:7]] == ["10.0", "0.4000", "0.2500", "0.00500"]
    assert compute_table([cell("e", "iemocap", "base", 0.3, 0.7, 0.3)])[1][0][6][0] == ""  # no price


def test_the_classification_table_gives_each_figure_its_interval():
    scored = cell("a", "iemocap", "base", 0.3, 0.7, 0.3)
    scores = {**scored.metrics.scores, "acc": Estimate(0.5, (0.3, 0.7)),
              "f1": Estimate(0.4, (0.2, 0.55))}
    scored = dataclasses.replace(scored, metrics=dataclasses.replace(scored.metrics, scores=scores))
    header, [row] = classification_table([scored])
    assert header[3:9] == ["Acc", "F1", "UAR", "Acc (untied)", "F1 (untied)", "UAR (untied)"]
    assert [text for text, _ in row[3:9]] == ["0.5000 [0.3000, 0.7000]", "0.4000 [0.2000, 0.5500]",
                                              "–", "–", "–", "–"]  # a record from before UAR
    assert [text for text, _ in row[9:]] == ["1.0000", ""]  # nor the tied items counted
    tied = dataclasses.replace(scored, metrics=dataclasses.replace(scored.metrics, n_tied=3))
    assert classification_table([tied])[1][0][10][0] == "3"
    assert "Wilson's score 95% CI under the expanded intervals" in LEGENDS["classification"]


def test_the_ambiguity_table_gives_each_cells_medians_under_its_corpus_levels():
    def binned(c, js, counts=(3, 4, 0, 2, 1), edges=(0.0, 0.4, 0.8, 1.2, 1.6, 2.0)):
        bins = {"method": "width", "edges": list(edges), "counts": list(counts), "js": js,
                "bc": [0.5] * 5, "r2": [0.1] * 5}
        return dataclasses.replace(c, metrics=dataclasses.replace(c.metrics, bins=bins))

    cells = [binned(cell("a", "crema_d", "base", 0.3, 0.7, 0.3), [0.5, 0.4, None, 0.3, 0.2]),
             binned(cell("a", "iemocap", "base", 0.3, 0.7, 0.3), [0.1] * 5),
             binned(cell("a", "crema_d", "w-bon", 0.3, 0.7, 0.3), [0.45, 0.4, None, 0.3, 0.1]),
             cell("b", "iemocap", "base", 0.3, 0.7, 0.3)]  # no levels recorded: left out
    header, rows = ambiguity_table(cells)
    assert header == ["Model", "Dataset", "Strategy", "Metric"] + [f"level {b}" for b in range(1, 6)]
    texts = [[t for t, _ in row] for row in rows]
    assert texts[0] == ["", "iemocap", "", "entropy (bits), width", "[0.00, 0.40) n=3",
                        "[0.40, 0.80) n=4", "[0.80, 1.20) n=0", "[1.20, 1.60) n=2", "[1.60, 2.00] n=1"]
    assert [row[:4] for row in texts] == [
        ["", "iemocap", "", "entropy (bits), width"], ["a", "iemocap", "base", "JS"],
        ["a", "iemocap", "base", "BC"], ["a", "iemocap", "base", "R²"],
        ["", "crema_d", "", "entropy (bits), width"], ["a", "crema_d", "base", "JS"],
        ["a", "crema_d", "base", "BC"], ["a", "crema_d", "base", "R²"],
        ["a", "crema_d", "w-bon", "JS"], ["a", "crema_d", "w-bon", "BC"], ["a", "crema_d", "w-bon", "R²"]]
    assert texts[5][4:] == ["0.5000", "0.4000", "–", "0.3000", "0.2000"]
    with_intervals = binned(cells[0], [0.5, 0.4, None, 0.3, 0.2])
    with_intervals.metrics.bins["js_ci"] = [[0.41, 0.58], None, None, None, None]  # 3 items: none
    _, rows = ambiguity_table([with_intervals])
    assert [t for t, _ in rows[1][4:]] == ["0.5000 [0.4100, 0.5800]", "0.4000", "–", "0.3000", "0.2000"]
    other_items = binned(cell("a", "crema_d", "cot", 0.3, 0.7, 0.3), [0.2] * 5, counts=(1, 1, 1, 1, 1))
    _, rows = ambiguity_table(cells + [other_items])  # another item set: its own levels' row
    assert [row[1][0] for row in rows if row[3][0] == "entropy (bits), width"] == \
        ["iemocap", "crema_d", "crema_d"]


def test_the_renderers_escape_what_would_break_a_row_and_mark_the_best_and_second():
    header, rows = ["Model", "a|b", "R²"], [[("x|y\r\nz\\", ""), ("1", "best"), ("2", "second")]]
    assert markdown(header, rows).splitlines() == [
        "| Model | a\\|b | R² |", "|---|---|---|", "| x\\|y  z\\\\ | **1** | <u>2</u> |"]
    assert latex(header, rows).splitlines()[:5] == [
        "\\begin{tabular}{lrr}", "\\toprule", "Model & a\\textbar{}b & R$^2$ \\\\", "\\midrule",
        "x\\textbar{}y  z\\textbackslash{} & \\textbf{1} & \\underline{2} \\\\"]


def test_a_strategy_table_shows_a_base_row_and_a_cell_without_base_by_their_own_means():
    base = cell("a", "iemocap", "base", 0.4, 0.6, 0.1, 0.05)
    better = cell("a", "iemocap", "bon", 0.3, 0.6, 0.1, 0.05)
    alone = cell("b", "iemocap", "bon", 0.35, 0.65, 0.15)
    rows = {(r[0][0], r[2][0]): [t for t, _ in r[3:]] for r in strategy_table([base, better, alone])[1]}
    assert rows[("a", "base")] == ["0.4000", "0.6000", "0.1000", ""]
    assert rows[("b", "bon")] == ["0.3500", "0.6500", "0.1500", ""]
    assert rows[("a", "bon")][0].startswith("0.3000 (+25.0") and rows[("a", "bon")][3] == "10"


def test_cells_on_the_same_options_written_in_another_order_are_one_item_set():
    from harness.report.tables import _apart_from_commonest, items_table

    def on(options, n=10):
        c = cell("a", "iemocap", "base", 0.4, 0.6, 0.1)
        return dataclasses.replace(c, meta={"dataset": {"options": options}},
                                   metrics=dataclasses.replace(c.metrics, n_items=n))

    same = [on({"a": 1, "b": 2}), on({"b": 2, "a": 1}), on({"a": 1, "b": 2})]
    assert _apart_from_commonest(same) == ["", "", ""]
    assert len(items_table(same)[1]) == 1  # one item set, one row
    # runs of another --limit merged into one report: a row for each item set, not the first's
    assert [row[2][0] for row in items_table([*same, on({"a": 1, "b": 2}, 9)])[1]] == ["9", "10"]
    assert _apart_from_commonest([*same, on({"a": 2}), on({"a": 1, "b": 2}, 9)]) == [
        "", "", "", ' (on 10 items, options {"a": 2})', " (on 9 items)"]


def test_one_item_cell_costs_and_no_levels_at_all():
    one = cell("a", "iemocap", "base", 0.4, 0.6, 0.1)
    one = dataclasses.replace(one, seconds=3.0, metrics=dataclasses.replace(
        one.metrics, n_items=1, n_valid=1, tokens=7))
    [row] = compute_table([one])[1]
    assert [text for text, _ in row[3:5]] == ["7.0", "3.0000"]
    assert ambiguity_table([one])[0] == ["Model", "Dataset", "Strategy", "Metric"]


def test_the_papers_item_counts_are_those_the_readme_gives():
    from pathlib import Path

    from harness.report.tables import PAPER_ITEMS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    said = " ".join(readme.split())  # the sentence may wrap
    assert (f"(IEMOCAP {PAPER_ITEMS['iemocap']:,}, MSP-Podcast {PAPER_ITEMS['msp_podcast']:,}, "
            f"CREMA-D {PAPER_ITEMS['crema_d']:,})") in said


def test_a_build_writes_every_table_in_markdown_csv_and_latex(tmp_path):
    """tables.md holds each table under its name; each has its .csv and .tex beside it."""
    import harness
    from harness.record import read_summary, write_record
    from harness.report import build_report
    from harness.report.paper_tables import table2, table3
    from harness.report.tables import TABLES

    for model in ("uniform", "label-prior"):
        path = write_record(harness.evaluate(model, "crema_d", n_resamples=10), tmp_path)
    build_report(tmp_path)
    cells = [read_summary(p) for p in sorted((tmp_path / "cells").glob("*.json"))]
    assert path in sorted((tmp_path / "cells").glob("*.json")) and len(cells) == 2
    md = (tmp_path / "tables.md").read_text()
    for name, build in {**TABLES, "table2": table2, "table3": table3}.items():
        header, rows = build(cells)
        assert f"## {name}\n" in md and f"{markdown(header, rows)}\n" in md, name
        assert (tmp_path / f"{name}.csv").read_text() == csv_text(header, rows), name
        assert (tmp_path / f"{name}.tex").read_text() == latex(header, rows) + "\n", name
