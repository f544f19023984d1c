from harness.report.paper_tables import table2, table3
from tests.report.test_tables import cell


def test_table2_has_strategies_as_rows_and_corpus_by_metric_columns_in_the_papers_order():
    cells = [cell("a", "crema_d", "base", 0.40, 0.70, 0.30), cell("a", "crema_d", "w-bon", 0.30, 0.80, 0.30),
             cell("a", "iemocap", "base", 0.50, 0.60, 0.20)]
    header, rows = table2(cells)
    assert header[2:5] == ["iemocap JS", "iemocap BC", "iemocap R²"] and header[5] == "crema_d JS"
    wbon = next(r for r in rows if r[1][0] == "w-bon")
    assert wbon[2][0] == "–" and wbon[5][0] == "0.3000 (+25.0*)"  # no iemocap cell; paired change
    base = next(r for r in rows if r[1][0] == "base")
    assert base[2][0] == "0.5000" and base[5][0] == "0.4000"


def test_table3_gives_accuracy_and_f1_per_corpus():
    header, rows = table3([cell("a", "iemocap", "base", 0.5, 0.6, 0.2)])
    assert header == ["Model", "Strategy", "iemocap Acc", "iemocap F1"]
    assert rows[0][2][0] == "–"  # these test records carry no accuracy


def test_table3_gives_each_cells_accuracy_and_f1_and_a_dash_where_a_corpus_was_not_run():
    import dataclasses

    from harness.record import Estimate

    scored = cell("a", "iemocap", "base", 0.5, 0.6, 0.2)
    scores = dict(scored.metrics.scores, acc=Estimate(0.625, (0.5, 0.7)), f1=Estimate(0.5, (0.4, 0.6)))
    scored = dataclasses.replace(scored, metrics=dataclasses.replace(scored.metrics, scores=scores))
    header, rows = table3([scored, cell("b", "crema_d", "base", 0.4, 0.7, 0.3)])
    assert header[2:] == ["iemocap Acc", "iemocap F1", "crema_d Acc", "crema_d F1"]
    row_a = next(r for r in rows if r[0][0] == "a")
    assert [text for text, _ in row_a[2:]] == ["0.6250", "0.5000", "–", "–"]
