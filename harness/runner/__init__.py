"""The runner: the grid, one worker's models and datasets, a cell's evaluation, the cache and the
regression gate. It produces :class:`~harness.record.CellRecord` s; :mod:`harness.report` reads
them."""

from harness.runner.evaluate import evaluate, stratified_subsample, summarize_cell
from harness.runner.grid import Cell, GridConfig, Thresholds
from harness.runner.worker import CellSkipped, GridWorker

__all__ = [
    "Cell",
    "CellSkipped",
    "GridConfig",
    "GridWorker",
    "Thresholds",
    "evaluate",
    "stratified_subsample",
    "summarize_cell",
]
