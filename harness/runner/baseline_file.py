"""A cell's baseline on disk (``evals/baselines/<cell>.json``): written by ``--update-baselines``,
read by the regression gate and by ``python -m harness.report compare``.

A baseline is committed with the project, so it meets merges, hand edits and copies. Reading one
checks all of it before the gate trusts it: a file that is not JSON (a merge's conflict markers
named as such), another cell's baseline, labels that are not the cell's, an item whose
prediction has the wrong length or holds a value that is not a finite probability, an id given
twice. Each raises :class:`BaselineError` naming the file, the item and the reason; labels that
are the cell's in another order are read by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import _json, metrics
from harness._atomic import write_whole
from harness._regular import read_regular
from harness.record import CellRecord, file_stem

_CONFLICT_MARKS = ("<<<<<<< ", "=======", ">>>>>>> ", "||||||| ")
AGAIN = "record it again with --update-baselines"


class BaselineError(ValueError):
    """A baseline file the gate cannot use: the file, the item where there is one, and why."""


@dataclass(frozen=True)
class Baseline:
    """What a baseline file holds: per item, its prediction (None: the item was not valid) and
    its scores as recorded, in the file's label order. ``revision``: the model revision it
    was recorded with; absent from the file (``has_revision`` false), the gate takes the run's."""

    path: Path
    cell: str
    labels: tuple[str, ...]
    revision: str | None
    has_revision: bool
    probs: dict[str, list[float] | None]
    scores: dict[str, dict[str, float]]
    inputs: dict[str, Any] = field(default_factory=dict)  # what produced it ({}: not recorded)

    def probs_for(self, labels: Sequence[str]) -> dict[str, list[float] | None]:
        """The predictions in ``labels``' order (the cell's), refused where the label sets
        differ: such a baseline was recorded for another label set and compares with nothing."""
        if tuple(labels) == self.labels:
            return self.probs
        if sorted(labels) != sorted(self.labels):
            raise BaselineError(f"{self.path}: recorded for the labels {list(self.labels)}, but the "
                                f"cell's labels are {list(labels)}; {AGAIN}")
        order = [self.labels.index(label) for label in labels]
        return {i: None if p is None else [p[k] for k in order] for i, p in self.probs.items()}


def baseline_path(folder: Path, cell_id: str) -> Path:
    """Where a cell's baseline lives (one place, so saving and gating agree)."""
    return Path(folder) / f"{file_stem(cell_id)}.json"


def item_scores(probs: Mapping[str, Any], votes: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per-item JS, JSD, BC, R² and accuracy (ties to the first label) of predictions by id."""
    ids = [i for i, p in probs.items() if p is not None and i in votes]
    if not ids:
        return {}
    v, p = np.array([votes[i] for i in ids], dtype=float), np.array([probs[i] for i in ids], dtype=float)
    scores = metrics.item_scores(v, p)
    return {i: {name: float(column[n]) for name, column in scores.items()} for n, i in enumerate(ids)}


def save_baseline(record: CellRecord, folder: Path, votes: Mapping[str, np.ndarray],
                  inputs: Mapping[str, Any] | None = None) -> Path:
    """Record the cell's per-item predictions and scores as its new baseline (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = baseline_path(folder, record.cell)
    probs = {i.id: None if i.probs is None else list(i.probs) for i in record.items}
    scores = item_scores(probs, votes)
    data = {"cell": record.cell, "labels": list(record.labels),
            "revision": (record.meta.get("model") or {}).get("revision"), "inputs": dict(inputs or {}),
            "items": [{"id": i, "probs": p, "scores": scores.get(i)} for i, p in probs.items()]}
    return write_whole(path, json.dumps(data, indent=1))


def read_baseline(path: Path, cell: str | None = None) -> Baseline:
    """The baseline at ``path``, checked whole (and, given ``cell``, checked to be that cell's).

    Raises:
        BaselineError: the file cannot be read or is not a sound baseline; the message names the
            file, the item where one is at fault, and the reason.
    """
    path = Path(path)
    data = _json_of(path)
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: not a baseline (a JSON {type(data).__name__}, not an object)")
    if not isinstance(data.get("cell"), str):
        raise BaselineError(f"{path}: not a baseline (no cell named)")
    if cell is not None and data["cell"] != cell:
        raise BaselineError(f"{path}: holds the baseline of {data['cell']!r}, not of {cell!r}; {AGAIN}")
    labels = data.get("labels")
    if (not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels)
            or len(set(labels)) != len(labels)):
        raise BaselineError(f"{path}: its labels are not a list of distinct names; {AGAIN}")
    revision, inputs = data.get("revision"), data.get("inputs", {})
    if not isinstance(inputs, dict):
        raise BaselineError(f"{path}: its inputs are not an object; {AGAIN}")
    probs, scores = _items_of(path, data.get("items"), len(labels))
    return Baseline(path, data["cell"], tuple(labels), revision if isinstance(revision, str) else None,
                    "revision" in data, probs, scores, inputs)


def conflict_line(text: str) -> int | None:
    """The first line (from 1) that a merge's conflict markers start, or None (a baseline's
    JSON lines and an amber snapshot's indented ones never start so)."""
    return next((n for n, line in enumerate(text.splitlines(), 1)
                 if line.startswith(_CONFLICT_MARKS)), None)


def _json_of(path: Path) -> Any:
    try:
        text = read_regular(path).decode("utf-8")
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return _json.loads(text)
    except ValueError as exc:
        conflict = conflict_line(text)
        if conflict is not None:
            raise BaselineError(f"{path}: holds a merge's conflict markers (line {conflict}); resolve "
                                f"the conflict, or {AGAIN}") from None
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) \
            else f" ({exc})"
        raise BaselineError(f"{path}: not JSON{where}; {AGAIN}") from None


def _items_of(path: Path, items: Any, k: int
              ) -> tuple[dict[str, list[float] | None], dict[str, dict[str, float]]]:
    if not isinstance(items, list):
        raise BaselineError(f"{path}: its items are not a list; {AGAIN}")
    probs: dict[str, list[float] | None] = {}
    scores: dict[str, dict[str, float]] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise BaselineError(f"{path}: item {n} is not an object with an id; {AGAIN}")
        ident = item["id"]
        if ident in probs:
            raise BaselineError(f"{path}: item {ident!r} is given twice; {AGAIN}")
        probs[ident] = _probs_of(path, ident, item.get("probs"), k)
        if item.get("scores") is not None:
            scores[ident] = _scores_of(path, ident, item["scores"])
    return probs, scores


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _probs_of(path: Path, ident: str, probs: Any, k: int) -> list[float] | None:
    if probs is None:
        return None
    if not isinstance(probs, list) or len(probs) != k:
        size = f"{len(probs)} values" if isinstance(probs, list) else f"a {type(probs).__name__}"
        raise BaselineError(f"{path}: item {ident!r} has a prediction of {size} for {k} labels; {AGAIN}")
    if not all(_is_number(p) and math.isfinite(p) and p >= 0 for p in probs):
        raise BaselineError(f"{path}: item {ident!r} has a prediction that is not finite "
                            f"non-negative numbers; {AGAIN}")
    return [float(p) for p in probs]


def _scores_of(path: Path, ident: str, scores: Any) -> dict[str, float]:
    if not isinstance(scores, dict) or not all(_is_number(v) for v in scores.values()):
        raise BaselineError(f"{path}: item {ident!r} has scores that are not numbers by name; {AGAIN}")
    return {name: float(value) for name, value in scores.items()}
