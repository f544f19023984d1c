"""Entries removed from a cache: ``python -m harness.cache prune CACHE --model NAME [--kind
KIND] [--before DAY] [--dry-run]``.

A cache only grows: each model revision, prompt or decoding adds entries, and none is replaced.
Pruning removes the entries of a model (all its revisions: an entry records its model's name,
not its revision), of a kind (``generation``, ``labels``, ``clip``) or written before a day, and
gives their space back to the disk. Nothing is removed without a filter: to start afresh,
delete the file. A removed entry is computed again by the next run that needs it.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache.merge import read_only
from harness.cache.store import CacheError, GenerationCache

KINDS = ("generation", "labels", "clip")
WAIT_S = 10.0  # for another run that holds the file to let it be rewritten


@dataclass(frozen=True)
class Pruned:
    """What a prune matched: its entries and the bytes their values took; whether their space
    went back to the disk (not while another run holds the file: later entries reuse it)."""

    entries: int
    value_bytes: int
    space_returned: bool = False


def prune_cache(path: str | Path, *, model: str | None = None, kind: str | None = None,
                before: str | None = None, dry_run: bool = False) -> Pruned:
    """Remove the entries of ``model``, of ``kind``, written before the day ``before``
    (``YYYY-MM-DD``, local time), all the filters given together; ``dry_run`` only counts.

    Raises:
        CacheError: no filter, an unknown kind or a day that is not one, a model with no entry
            in the cache (a typo would remove nothing and say so quietly), or a file that is not
            a cache (checked read-only before it is opened for writing).
    """
    where, params = _filters(model, kind, before)
    with closing(read_only(path)) as db:
        entries, value_bytes = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM entries WHERE {where}",
            params).fetchone()
        models = [m for (m,) in db.execute("SELECT DISTINCT model FROM entries ORDER BY model")]
    if model is not None and model not in models:
        raise CacheError(f"{path}: no entry of model {model!r}; its models: "
                         f"{', '.join(models) or 'none'}")
    if not entries or dry_run:
        return Pruned(entries, value_bytes)
    cache = GenerationCache(path, timeout=WAIT_S)
    try:
        removed, returned = cache.remove(where, params)
        return Pruned(removed, value_bytes, returned)
    finally:
        cache.close()


def _filters(model: str | None, kind: str | None, before: str | None) -> tuple[str, list[Any]]:
    """The SQL condition of the filters given, and its parameters."""
    if model is None and kind is None and before is None:
        raise CacheError("name what to remove (--model, --kind, --before); to start afresh, "
                         "delete the file")
    clauses: list[str] = []
    params: list[Any] = []
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if kind is not None:
        if kind not in KINDS:
            raise CacheError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
        clauses.append("kind = ?")
        params.append(kind)
    if before is not None:
        try:
            day = time.mktime(time.strptime(before, "%Y-%m-%d"))
        except ValueError:
            raise CacheError(f"--before {before!r}: not a day as YYYY-MM-DD") from None
        clauses.append("created < ?")
        params.append(day)
    return " AND ".join(clauses), params
