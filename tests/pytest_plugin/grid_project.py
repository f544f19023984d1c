"""A small grid project for pytester: the chance baselines on two corpora (four fast cells)."""

from __future__ import annotations

import textwrap

GRID_MODULE = """
from harness.runner import GridConfig, Thresholds
GRID = GridConfig(models=("uniform", "label-prior"), datasets=("crema_d", "iemocap"),
                  thresholds={{"*": Thresholds(valid_min=1.0)}}{extra})

def test_cell(cell, run_cell, cell_snapshot):
    record = run_cell(cell)
    assert record.metrics.valid >= cell.thresholds.valid_min, record.commonest_failure()
    outcome = cell_snapshot.check(record)  # what it returns is what the record is told
    assert outcome == cell_snapshot.outcome and outcome.startswith(("matched", "recorded", "no "))
"""


def grid_project(pytester, extra: str = "", conftest: str = ""):
    """Write ``test_grid.py`` (``extra``: more GridConfig arguments) and an optional conftest."""
    pytester.makepyfile(test_grid=GRID_MODULE.format(extra=extra))
    if conftest:
        pytester.makeconftest(textwrap.dedent(conftest))
    return pytester
