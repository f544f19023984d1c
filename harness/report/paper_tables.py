"""Tables shaped like the paper's: Table 2 (rows = model and strategy, columns = corpus × JS/BC/R²,
each value with its paired change against ``base``) and the accuracy/F1 table (columns = corpus
× Acc/F1), corpora in the paper's order."""

from __future__ import annotations

from harness.metrics import LOWER_IS_BETTER
from harness.record import CellRecord
from harness.report.paired import paired_change, with_change
from harness.report.tables import DISTRIBUTION, TITLES, _fmt, _mean, paper_order

Table = tuple[list[str], list[list[tuple[str, str]]]]


def _grid(cells: list[CellRecord]) -> tuple[list[str], list[tuple[str, str]], dict]:
    datasets = paper_order({c.dataset for c in cells})
    rows = list(dict.fromkeys((c.model, c.strategy) for c in cells))
    index = {(c.model, c.strategy, c.dataset): c for c in cells}
    return datasets, rows, index


def table2(cells: list[CellRecord]) -> Table:
    """Strategies as rows, corpus × metric as columns: ``0.3364 (+6.3*)`` against the model's
    ``base`` on the items valid in both (``*``: the paired 95% CI excludes zero, on 6 paired
    items or more)."""
    datasets, rows, index = _grid(cells)
    header = ["Model", "Strategy"] + [f"{d} {TITLES[m]}" for d in datasets for m in DISTRIBUTION]
    out = []
    for model, strategy in rows:
        row = [(model, ""), (strategy, "")]
        for d in datasets:
            cell, base = index.get((model, strategy, d)), index.get((model, "base", d))
            for m in DISTRIBUTION:
                row.append((_with_change(cell, base, m), ""))
        out.append(row)
    return header, out


def _with_change(cell: CellRecord | None, base: CellRecord | None, metric: str) -> str:
    if cell is None:
        return "–"
    change = None if base is None or base is cell else paired_change(
        base, cell, metric, LOWER_IS_BETTER[metric])
    if change is None:
        return _fmt(_mean(cell, metric))
    return with_change(change)


def table3(cells: list[CellRecord]) -> Table:
    """Accuracy and macro-F1 (ties to the first label, every item) per corpus."""
    datasets, rows, index = _grid(cells)
    header = ["Model", "Strategy"] + [f"{d} {m}" for d in datasets for m in ("Acc", "F1")]
    out = []
    for model, strategy in rows:
        row = [(model, ""), (strategy, "")]
        for d in datasets:
            cell = index.get((model, strategy, d))
            row += [("–" if cell is None else _fmt(_mean(cell, m)), "") for m in ("acc", "f1")]
        out.append(row)
    return header, out
