"""One case per model × dataset × strategy (``pytest evals -n 4 -k iemocap``)."""

from grid_config import GRID  # noqa: F401  (the plugin parametrizes ``cell`` from it)

from harness.runner import Cell


def test_cell(cell: Cell, run_cell, cell_snapshot):
    record = run_cell(cell)  # also gated against evals/baselines (a paired bootstrap)
    m, bounds = record.metrics, cell.thresholds
    if bounds.valid_min is not None:
        assert m.valid >= bounds.valid_min, (f"valid {m.valid:.3f} < {bounds.valid_min}; "
                                             f"{record.commonest_failure()}")
    if bounds.js_max is not None:
        assert m.mean("js") <= bounds.js_max
    if bounds.bc_min is not None:
        assert m.mean("bc") >= bounds.bc_min
    if bounds.r2_min is not None:
        assert m.mean("r2") >= bounds.r2_min
    # the rounded metrics against the snapshot of the same inputs (model revision, data, options,
    # strategy configuration, prompts); a configuration never recorded is reported, not failed
    cell_snapshot.check(record)
