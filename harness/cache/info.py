"""What a generation cache holds: ``python -m harness.cache info CACHE``, read-only.

Its entries by kind (``generation``, ``labels``, ``clip``) and model, with the bytes their values
take and when they were written, so that a researcher sees which models a growing cache is
spent on before folding, copying or removing it.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from harness.cache.merge import read_only


@dataclass(frozen=True)
class EntryGroup:
    """The entries of one kind and model."""

    kind: str
    model: str
    entries: int
    value_bytes: int
    first: float | None  # when the oldest was written (seconds since the epoch; None: no row
    last: float | None  # says when it was, as in a row another program wrote)


def cache_groups(path: str | Path) -> list[EntryGroup]:
    """The cache's entries grouped by kind and model, sorted so.

    Raises:
        CacheError: ``path`` is not a cache file of this schema (nothing is written to it).
    """
    with closing(read_only(path)) as db:
        rows = db.execute(f"SELECT kind, model, COUNT(*), SUM(LENGTH(value)), MIN({_WHEN}), "
                          f"MAX({_WHEN}) FROM entries GROUP BY kind, model ORDER BY kind, model")
        return [EntryGroup(*row) for row in rows]


def info_lines(path: str | Path) -> list[str]:
    """A printable summary: the file, its size on disk, then a row per kind and model."""
    groups = cache_groups(path)
    files = [Path(path), *(Path(f"{path}{end}") for end in ("-wal", "-shm"))]
    size = sum(f.stat().st_size for f in files if f.is_file())
    lines = [f"{path}: {entries(sum(g.entries for g in groups))}, {size / 2**20:,.1f} MiB on disk "
             "(with its write-ahead log)"]
    if not groups:
        return lines
    width = max(len(g.model) for g in groups)
    lines.append(f"{'kind':<11}{'model':<{width + 2}}{'entries':>9}{'MiB':>9}  written")
    for g in groups:
        lines.append(f"{g.kind:<11}{g.model:<{width + 2}}{g.entries:>9,}{g.value_bytes / 2**20:>9.2f}"
                     f"  {_day(g.first)} to {_day(g.last)}")
    return lines


# a row's time where it is a number (a text, as another program may write, would sort after them all)
_WHEN = "CASE WHEN typeof(created) IN ('integer', 'real') THEN created END"


def entries(n: int) -> str:
    """``1 entry``, ``2,000 entries``."""
    return f"{n:,} entr{'y' if n == 1 else 'ies'}"


def _day(seconds: float | None) -> str:
    """The local day and minute, or ``?`` where the rows hold no time there is (none, or one
    past what the clock can say)."""
    if seconds is None:  # not localtime's None, which is now
        return "?"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))
    except (ValueError, OverflowError, OSError):
        return "?"
