"""One case per model × dataset × strategy (``pytest evals -n 4 -k iemocap``)."""

from grid_config import GRID  # noqa: F401  (the plugin parametrizes ``cell`` from it)

from harness.grid import Cell

ROUNDED = ("js", "jsd", "bc", "r2", "acc", "f1")


def rounded(metrics: dict) -> dict:
    """What the snapshot keeps: means to 4 decimals and the counts."""
    out = {name: round(metrics[name]["mean"], 4) for name in ROUNDED if name in metrics}
    out.update({k: metrics.get(k) for k in ("n_items", "n_valid", "n_tied")})
    out["valid"] = round(metrics["valid"], 4)
    return out


def test_cell(cell: Cell, run_cell, snapshot):
    record = run_cell(cell)
    m, bounds = record["metrics"], cell.thresholds
    if bounds.valid_min is not None:
        assert m["valid"] >= bounds.valid_min, f"valid {m['valid']:.3f} < {bounds.valid_min}"
    if bounds.js_max is not None:
        assert m["js"]["mean"] <= bounds.js_max
    if bounds.bc_min is not None:
        assert m["bc"]["mean"] >= bounds.bc_min
    if bounds.r2_min is not None:
        assert m["r2"]["mean"] >= bounds.r2_min
    assert rounded(m) == snapshot
