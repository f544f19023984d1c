"""The runner: the grid, one worker's models and datasets, a cell's evaluation, the cache and the
regression gate. It produces :class:`~harness.record.CellRecord` s; :mod:`harness.report` reads
them.

Names are imported when first used, so that the pytest plugin, loaded into every pytest process
(each xdist worker included), reads the grid's configuration without importing scipy and pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.runner.evaluate import NothingToEvaluate, evaluate, stratified_subsample, summarize_cell
    from harness.runner.grid import Cell, GridConfig, Thresholds
    from harness.runner.worker import CellSkipped, GridWorker

_WHERE = {"evaluate": "evaluate", "NothingToEvaluate": "evaluate", "stratified_subsample": "evaluate",
          "summarize_cell": "evaluate", "Cell": "grid", "GridConfig": "grid", "Thresholds": "grid",
          "CellSkipped": "worker", "GridWorker": "worker"}
__all__ = ["Cell", "CellSkipped", "GridConfig", "GridWorker", "NothingToEvaluate", "Thresholds",
           "evaluate", "stratified_subsample", "summarize_cell"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'harness.runner' has no attribute {name!r}")
    return getattr(importlib.import_module(f"harness.runner.{_WHERE[name]}"), name)
