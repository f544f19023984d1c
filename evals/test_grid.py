"""One case per model × dataset × strategy (``pytest evals -n 4 -k iemocap``)."""

from grid_config import GRID  # noqa: F401  (the plugin parametrizes ``cell`` from it)

from harness.record import CellMetrics
from harness.runner import Cell

ROUNDED = ("js", "jsd", "bc", "r2", "acc", "f1", "acc_untied", "f1_untied")


def rounded(metrics: CellMetrics) -> dict:
    """What the snapshot keeps: means to 4 decimals and the counts."""
    out: dict = {name: round(metrics.mean(name), 4) for name in ROUNDED if name in metrics.scores}
    out.update(n_items=metrics.n_items, n_valid=metrics.n_valid, n_tied=metrics.n_tied)
    out["valid"] = round(metrics.valid, 4)
    return out


def test_cell(cell: Cell, run_cell, snapshot):
    record = run_cell(cell)
    m, bounds = record.metrics, cell.thresholds
    if bounds.valid_min is not None:
        assert m.valid >= bounds.valid_min, f"valid {m.valid:.3f} < {bounds.valid_min}"
    if bounds.js_max is not None:
        assert m.mean("js") <= bounds.js_max
    if bounds.bc_min is not None:
        assert m.mean("bc") >= bounds.bc_min
    if bounds.r2_min is not None:
        assert m.mean("r2") >= bounds.r2_min
    assert rounded(m) == snapshot
