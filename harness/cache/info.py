"""What a generation cache holds: ``python -m harness.cache info CACHE``, read-only.

Its entries by kind (``generation``, ``labels``, ``clip``) and model, with the bytes their values
take and when they were written, so that a researcher sees which models a growing cache is
spent on before folding, copying or removing it.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from harness import _json
from harness.cache.merge import read_only
from harness.models.api import SERVED_BY_CHARS


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


def served_counts(path: str | Path) -> dict[str, Counter[str]]:
    """For each model whose generations name the snapshot that gave them (an API's: its alias
    moves), how many name each; rows that are not a generation's JSON are passed over."""
    out: dict[str, Counter[str]] = {}
    with closing(read_only(path)) as db:
        rows = db.execute("SELECT model, value FROM entries WHERE kind = 'generation' AND "
                          "typeof(value) = 'text' AND instr(value, '\"served_by\"') > 0")
        for model, value in rows:
            try:
                name = _json.loads(value).get("served_by")
            except (ValueError, AttributeError):  # damaged: the run computes it again
                continue
            if isinstance(name, str) and name:
                out.setdefault(str(model), Counter())[name[:SERVED_BY_CHARS]] += 1
    return out


def info_lines(path: str | Path) -> list[str]:
    """A printable summary: the file, its size on disk, then a row per kind and model, and the
    snapshots each API model's generations came from."""
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
    for model, names in sorted(served_counts(path).items()):
        ranked = sorted(names.items(), key=lambda pair: (-pair[1], pair[0]))
        shown = ", ".join(f"{name} {n:,}" for name, n in ranked[:SHOWN_NAMES])
        more = f" and {len(ranked) - SHOWN_NAMES:,} more names" if len(ranked) > SHOWN_NAMES else ""
        lines.append(f"{model}'s generations by the snapshot that gave them: {shown}{more}"
                     + (" (more than one: a rerun on this cache mixes them)" if len(ranked) > 1 else ""))
    return lines


SHOWN_NAMES = 5  # a model's snapshots listed, commonest first


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
