"""A cell's per-item scores as columns: the ids, and per metric an array with NaN where the item
has no score. A record file carries them in its head, so the report reads every cell's scores
with one parse of a few arrays per cell instead of one per item (2.2 million item lines for a
paper-sized grid), and holds them as arrays rather than as objects per item.

In the file each metric's column is its little-endian float64 bytes in base64 (``"<f8"``): the
report's reading of 222 cells of 10,000 items spent 1.7 s parsing the same numbers written out
in decimal. The items themselves, below, keep every score readable.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METRICS = ("js", "jsd", "bc", "r2", "acc")
DTYPE = "<f8"
_IDS: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct id list


def shared_ids(ids: Sequence[str]) -> tuple[str, ...]:
    """The one tuple of these ids in this process (a corpus's cells share it, and pair by
    position when theirs is the same object)."""
    key = tuple(ids)
    if len(_IDS) > 10_000:
        _IDS.clear()
    return _IDS.setdefault(key, key)


@dataclass(frozen=True)
class ScoreColumns:
    """Per-item scores of one cell, in item order."""

    ids: tuple[str, ...]
    values: Mapping[str, np.ndarray]
    made_from: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_items(cls, items: Iterable[Any]) -> ScoreColumns:
        """From :class:`~harness.record.ItemRecord` objects (an item without scores: NaN); a
        tuple given is kept as ``made_from``, so that a record can tell its own items' columns
        from another item set's."""
        given = items if isinstance(items, tuple) else None
        items = list(items)
        values = {m: np.array([math.nan if not i.scores or i.scores.get(m) is None
                               else float(i.scores[m]) for i in items]) for m in METRICS}
        return cls(shared_ids([i.id for i in items]), values, given)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": list(self.ids), "dtype": DTYPE}
        for m, column in self.values.items():
            out[m] = base64.b64encode(np.ascontiguousarray(column, dtype=DTYPE).tobytes()).decode()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScoreColumns:
        """Raises ValueError (or TypeError, KeyError, binascii.Error) on data of another shape."""
        ids = data["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("item_scores: 'ids' is not a list of strings")
        if data.get("dtype") != DTYPE:
            raise ValueError(f"item_scores: dtype {data.get('dtype')!r}, not {DTYPE!r}")
        values = {}
        for m in METRICS:
            column = np.frombuffer(base64.b64decode(data[m], validate=True), dtype=DTYPE)
            if column.shape != (len(ids),):
                raise ValueError(f"item_scores: {m!r} has {column.size} values for {len(ids)} ids")
            values[m] = column.astype(np.float64)
        return cls(shared_ids(ids), values)

    def matched(self, other: ScoreColumns, metrics: Sequence[str]
                ) -> tuple[np.ndarray, np.ndarray]:
        """(N, len(metrics)) scores of this cell's items and of the same items in ``other``
        (matched by id; NaN where either has no score)."""
        mine = np.column_stack([self.values[m] for m in metrics])
        if other.ids is self.ids or other.ids == self.ids:
            theirs = np.column_stack([other.values[m] for m in metrics])
        else:
            where = {item: n for n, item in enumerate(other.ids)}
            rows = np.fromiter((where.get(item, -1) for item in self.ids), dtype=np.intp,
                               count=len(self.ids))
            hit = rows >= 0
            theirs = np.full((len(rows), len(metrics)), math.nan)
            for j, m in enumerate(metrics):
                theirs[hit, j] = other.values[m][rows[hit]]
        return mine, theirs
