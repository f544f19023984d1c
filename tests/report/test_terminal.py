import dataclasses

from harness.record import CellMetrics, CellRecord, Estimate
from harness.report.tables import TABLES
from harness.report.terminal import aligned, results_lines
from tests.report.test_tables import CELLS, cell


def _lines(cells):
    return results_lines(cells, {name: TABLES[name](cells) for name in ("strategies", "items")})


def test_each_cell_is_a_row_with_base_first_and_its_paired_change():
    lines = _lines(CELLS)
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    rows = [line.split() for line in lines[header + 1:]]
    assert [row[:3] for row in rows] == [["a", "iemocap", "base"], ["a", "iemocap", "w-bon"],
                                         ["b", "iemocap", "base"], ["c", "iemocap", "base"]]
    assert rows[1][3:6] == ["10/10", "0.3364±0.000", "(+15.9*)"] and rows[1][-2:] == ["10", "–"]
    assert rows[0][3:5] == ["10/10", "0.4000±0.000"]


def test_a_change_from_a_base_of_0_is_its_difference_and_the_conventions_say_so():
    """R² of a base that answered one distribution for every item is 0: no percent, so the row
    gives the difference, with its star, and the lines above say what it is."""
    cells = [cell("a", "iemocap", "base", 0.40, 0.70, 0.0), cell("a", "iemocap", "w-bon", 0.3364,
                                                                 0.75, 0.20, spread=0.05)]
    lines = _lines(cells)
    row = lines[-1].split()
    assert row[2] == "w-bon" and row[-6:-2] == ["0.2000±0.000", "(base", "0,", "+0.2000*)"]
    assert "(against a base whose mean is 0, which has none, the difference: 'base 0, +0.3781')" \
        in " ".join(lines)
    assert "base whose mean is 0" not in " ".join(_lines(CELLS))  # said only where one is shown


def test_each_mean_carries_its_uncertainty():
    wide = cell("a", "iemocap", "base", 0.40, 0.70, 0.30)
    scores = dict(wide.metrics.scores, js=Estimate(0.40, (0.35, 0.47)), acc=Estimate(0.5, (0.3, 0.7)))
    wide = CellRecord(wide.cell, "a", "iemocap", "base", wide.labels,
                      CellMetrics(10, 10, 1.0, scores), 0.0, 0.0, wide.items, {})
    row = _lines([wide])[-1].split()
    assert row[4] == "0.4000±0.060" and row[-1] == "0.5000±0.200"


def test_the_conventions_say_what_the_numbers_are_comparable_with():
    text = " ".join(_lines(CELLS))
    for words in ("iemocap 10 items (the paper's: 4,373)", "valid items", "paired",
                  "± half the width of its 95% CI (bootstrap, acc's Wilson's; expanded intervals, "
                  "docs/metrics.md)",
                  "ties to the first label", "* where the paired bootstrap 95% CI"):
        assert words in text, words
    older = [dataclasses.replace(c, metrics=dataclasses.replace(c.metrics, interval="percentile"))
             for c in CELLS[:1]] + CELLS[1:]  # a record written before there was a choice
    assert "95% CI (expanded, percentile intervals" in " ".join(_lines(older))
    plain = [dataclasses.replace(c, metrics=dataclasses.replace(c.metrics, interval="percentile"))
             for c in CELLS]
    assert "95% CI (bootstrap; percentile intervals, docs/metrics.md)" in " ".join(_lines(plain))
    assert "excludes 0, on 6 paired items or more)" in " ".join(_lines(plain))
    assert "excludes 0 and the sign-flip test agrees, over 6 or more items that changed)" in text
    assert all(len(line) <= 100 for line in _lines(CELLS) if not line.startswith(("model", "a ", "b ", "c ")))


def test_a_name_cannot_reach_the_terminal_as_an_escape_sequence():
    hostile = cell("evil\x1b[2J\nname", "iemocap", "base", 0.4, 0.7, 0.3)
    assert not any("\x1b" in line or "\n" in line for line in _lines([hostile]))
    assert aligned([["a", "bb"], ["ccc", "d"]]) == ["a    bb", "ccc  d"]


def test_a_run_without_cells_prints_nothing():
    assert _lines([]) == []


def test_the_prompt_sets_are_named_as_the_records_give_them():
    def with_prompts(c, prompts):
        return type(c)(c.cell, c.model, c.dataset, c.strategy, c.labels, c.metrics, 0.0, 0.0,
                       c.items, {"prompts": prompts} if prompts else {})

    cells = [with_prompts(CELLS[0], {"set": "paper", "version": 1}), with_prompts(CELLS[1], None)]
    assert "Prompts: paper v1;" in " ".join(_lines(cells))
    cells.append(with_prompts(CELLS[2], {"set": "harness-v0", "version": 0}))
    assert "Prompts: harness-v0 v0, paper v1;" in " ".join(_lines(cells))
    assert "Prompts: none;" in " ".join(_lines([CELLS[1]]))


def test_data_the_loader_dropped_is_named_with_the_command_that_lists_it():
    from tests.report.test_tables import _with_dataset

    left = {"skipped": {}, "problems": {"error": 1, "warning": 0}, "first_problems": []}
    dataset = {"n_items": 10, "root": "/data/my iemocap", "options": {}, "left_out": left}
    text = " ".join(_lines([_with_dataset(CELLS[0], dataset)]))
    assert ("iemocap 10 items (the paper's: 4,373), 1 problem dropped data: python -m "
            "harness.data check iemocap '/data/my iemocap' lists them.") in text
    assert "dropped" not in " ".join(_lines(CELLS))
    hostile = _with_dataset(CELLS[0], dict(dataset, root="/data/\x1b[2J\nx"))
    assert not any("\x1b" in line for line in _lines([hostile]))


def test_settings_other_than_the_reference_setups_are_named():
    import dataclasses

    from harness.strategies import StrategyConfig

    def with_config(c, **changes):
        config = dataclasses.asdict(StrategyConfig(**changes))
        return type(c)(c.cell, c.model, c.dataset, c.strategy, c.labels, c.metrics, 0.0, 0.0,
                       c.items, {"prompts": {"set": "paper", "version": 1}, "strategy_config": config})

    reference = [with_config(CELLS[0]), with_config(CELLS[1])]
    assert "reference setup" not in " ".join(_lines(reference))
    changed = [with_config(CELLS[0], beams=3, seed=1), with_config(CELLS[1], beams=3, seed=2)]
    assert "; not the reference setup: beams 3, seed 1, 2." in " ".join(_lines(changed))
    assert "uniform guess" not in " ".join(_lines(changed))
    guessed = with_config(CELLS[0], invalid="uniform")
    guessed = dataclasses.replace(guessed, metrics=dataclasses.replace(
        guessed.metrics, rules={"json_dict": 8, "uniform_guess": 2}))
    guessed = dataclasses.replace(guessed, metrics=dataclasses.replace(guessed.metrics, n_valid=8))
    lines = _lines([guessed, CELLS[1]])
    guessing = " ".join(lines)
    assert "; not the reference setup: invalid uniform." in guessing
    assert ("mean over its valid items (with invalid uniform, an answer that gave no "
            "distribution as well, scored as a uniform guess; 'valid' then reads as 9+16/26, the "
            "model's own distributions plus the guesses)") in guessing
    rows = {tuple(line.split()[:3]): line.split()[3] for line in lines if line.startswith("a ")}
    assert rows == {("a", "iemocap", "base"): "8+2/10"}
    assert "10/10" in " ".join(_lines(CELLS[:1]))  # no "+0" where no answer was guessed


def test_the_items_say_their_options_the_paper_s_n_and_a_corpus_the_paper_lacks():
    from tests.report.test_tables import _with_dataset

    full = _with_dataset(CELLS[0], {"n_items": 4373, "options": {}})
    some = _with_dataset(CELLS[0], {"n_items": 8, "options": {"sessions": [2]}})
    mine = _with_dataset(dataclasses.replace(CELLS[0], dataset="mine"), {"n_items": 5})
    text = " ".join(_lines([full, some, mine]))
    assert ('Items: iemocap {"sessions": [2]} 8 items (the paper\'s: 4,373); iemocap 4,373 items '
            "(the paper's N); mine 5 items.") in text


def test_w_bon_s_alpha_is_the_w_bon_cells_alone():
    def with_alpha(c, strategy, alpha):
        return dataclasses.replace(c, strategy=strategy, meta={"strategy_config": {"alpha": alpha}})

    text = " ".join(_lines([with_alpha(CELLS[0], "base", "uniform"),
                            with_alpha(CELLS[3], "w-bon", "mean")]))
    assert "W-BoN's alpha: mean." in text
    assert "alpha" not in " ".join(_lines([with_alpha(CELLS[0], "base", "uniform")]))


def test_cells_with_invalid_items_are_named_with_js_under_each_reading():
    def partly(strategy, uniform_js):
        base = cell("a", "iemocap", strategy, 0.40, 0.70, 0.30)
        invalid = {"left_out": {"n": 8, "js": 0.4}, "uniform": {"n": 10, "js": uniform_js}}
        return dataclasses.replace(base, metrics=dataclasses.replace(
            base.metrics, n_valid=8, invalid=invalid))

    text = " ".join(_lines([*CELLS, partly("cot", 0.45)]))
    assert ("Cells with invalid items (left out of their means), JS with them left out and with "
            "each scored as a uniform guess: a iemocap cot 8 of 10 valid, 0.4000 and 0.4500 (the "
            "invalid table: tables.md, report.html).") in text
    assert "invalid items" not in " ".join(_lines(CELLS))  # said only where a cell has some
    guessing = partly("cot", 0.45)
    guessing = dataclasses.replace(guessing, metrics=dataclasses.replace(
        guessing.metrics, rules={"json_dict": 8, "uniform_guess": 2}))
    assert ("Cells with invalid items (left out of their means, but for the answers of a cell run "
            "with invalid=uniform), JS") in " ".join(_lines([*CELLS, guessing]))
    many = [partly(f"s{k}", None if k == 0 else 0.45) for k in range(9)]  # s0: an older record's
    text = " ".join(_lines(many))
    assert text.count(" of 10 valid") == 6 and "s1 8 of 10" in text and "s0 " not in text.split(
        "uniform guess:")[1] and "; and 2 more (the invalid table" in text


def test_the_marked_changes_are_counted_beside_what_chance_alone_would_mark():
    """Each change is tested alone at 5%: over many, a reader must see how many chance marks."""
    text = " ".join(_lines(CELLS))
    assert ("Marked *: 3 of 3 changes, each tested alone at 5% (not corrected for the 3 made: if "
            "no strategy changed anything, fewer than one would be marked by chance).") in text
    # ten strategies whose items all move at random around base's: 30 changes, none marked
    many = [cell("a", "iemocap", "base", 0.40, 0.70, 0.30, spread=0.05)] + [
        cell("a", "iemocap", f"s{k}", 0.40, 0.70, 0.30, spread=0.05, phase=k) for k in range(10)]
    assert ("Marked *: 0 of 30 changes, each tested alone at 5% (not corrected for the 30 made: if "
            "no strategy changed anything, about 2 would be marked by chance).") in " ".join(
                _lines(many))
    plain = [dataclasses.replace(c, metrics=dataclasses.replace(c.metrics, interval="percentile"))
             for c in CELLS]
    assert "would be marked by chance, more over few changed items)." in " ".join(_lines(plain))
    assert "Marked" not in " ".join(_lines(CELLS[:3]))  # no change, nothing to count
