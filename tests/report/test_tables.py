from harness.record import CellMetrics, CellRecord, Estimate
from harness.report.tables import csv_text, latex, main_table, markdown, strategy_table


def cell(model, dataset, strategy, js, bc, r2):
    scores = {name: Estimate(value, (value, value)) for name, value in (("js", js), ("bc", bc),
                                                                          ("r2", r2))}
    return CellRecord(f"{model}-{dataset}-{strategy}", model, dataset, strategy, ("x", "y"),
                      CellMetrics(10, 10, 1.0, scores, tokens=100), 0.0, 0.0, (), {})


CELLS = [cell("a", "iemocap", "base", 0.40, 0.70, 0.30), cell("b", "iemocap", "base", 0.30, 0.80, 0.20),
         cell("c", "iemocap", "base", 0.35, 0.60, 0.40), cell("a", "iemocap", "w-bon", 0.3364, 0.75, 0.33)]


def test_main_table_marks_best_and_second_per_column():
    header, rows = main_table(CELLS)
    assert header == ["Model", "iemocap JS", "iemocap BC", "iemocap R²"]
    js = {row[0][0]: row[1] for row in rows}
    assert js["b"] == ("0.3000", "best") and js["c"] == ("0.3500", "second") and js["a"][1] == ""
    r2 = {row[0][0]: row[3] for row in rows}
    assert r2["c"][1] == "best" and r2["a"][1] == "second"


def test_strategy_table_shows_relative_change_against_base():
    _, rows = strategy_table(CELLS)
    wbon = next(r for r in rows if r[2][0] == "w-bon")
    assert wbon[3][0] == "0.3364 (+15.9)"  # JS: lower is better
    assert wbon[4][0] == "0.7500 (+7.1)"


def test_renderers():
    header, rows = main_table(CELLS)
    md = markdown(header, rows)
    assert "**0.3000**" in md and "<u>0.3500</u>" in md
    tex = latex(header, rows)
    assert "\\textbf{0.3000}" in tex and "R$^2$" in tex and tex.endswith("\\end{tabular}")
    assert csv_text(header, rows).splitlines()[1].startswith("a,0.4000")
