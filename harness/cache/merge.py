"""Several machines' caches folded into one: ``python -m harness.cache merge TARGET SOURCE...``.

A source is only read: it is opened read-only and checked as a cache (its schema version and
columns) before anything is written, so that a mistyped path, an empty file or another program's
database is refused, named, and left as it was (opened as a cache, it would have been given the
cache's table).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from harness._regular import not_a_regular_file
from harness.cache.store import COLUMNS, SCHEMA_VERSION, CacheError, GenerationCache


def merge_caches(target: str | Path, sources: Sequence[str | Path]) -> dict[str, int]:
    """Fold the entries of ``sources`` into ``target`` (created if needed); an entry already in
    the target is kept. Returns the entries added per source.

    Raises:
        CacheError: A source that is missing, not a file, not a cache of this schema, or the
            target itself; each is checked before the target is made or written.
    """
    for source in sources:
        _check_source(Path(source), Path(target))
    added: dict[str, int] = {}
    merged = GenerationCache(target)
    try:
        for source in sources:
            with closing(_read_only(Path(source))) as db:
                rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM entries")
                added[str(source)] = merged.add_rows(rows)
    finally:
        merged.close()
    return added


def _read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened read-only. SQLite reads a cache (a write-ahead-log database) read-only
    only where it can make the log's index beside it: in a folder this user cannot write (a
    colleague's cache, a read-only mount) it refuses ("attempt to write a readonly database").
    Where no log is beside the file, all of the cache is in it, and it is read as immutable."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        db.execute("PRAGMA user_version").fetchone()
    except sqlite3.OperationalError as exc:
        db.close()
        log = Path(f"{path}-wal")
        if log.exists() and log.stat().st_size > 0:
            raise CacheError(f"{path}: cannot be read here ({exc}): its folder cannot be written "
                             f"and its write-ahead log {log.name} holds entries not yet in the "
                             "file; copy both to a folder you can write") from None
        db = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None)
    return db


def read_only(source: str | Path) -> sqlite3.Connection:
    """The cache file ``source``, opened read-only once it is checked to be a cache of this
    schema (``python -m harness.cache info`` reads it so).

    Raises:
        CacheError: as :func:`merge_caches` for a source.
    """
    _check_source(Path(source), None)
    return _read_only(Path(source))


def _check_source(source: Path, target: Path | None) -> None:
    """Refuse a source that is not a readable cache of this schema, or that is the target."""
    why = not_a_regular_file(source)
    if why == "not found":
        raise CacheError(f"no such cache file: {source}")
    if why is not None:
        raise CacheError(f"{source}: not a cache file ({why})")
    if target is not None and target.exists() and source.samefile(target):
        raise CacheError(f"{source}: is the target itself: name it once, as the target")
    try:
        with closing(_read_only(source)) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            columns = tuple(row[1] for row in db.execute("PRAGMA table_info(entries)"))
    except sqlite3.Error as exc:
        raise CacheError(f"{source}: not a usable generation cache ({exc})") from None
    if version > SCHEMA_VERSION:
        raise CacheError(f"{source}: a cache of schema version {version}, written by a newer "
                         f"harness; this one reads version {SCHEMA_VERSION}")
    if columns != COLUMNS:
        found = f"its entries table has columns {list(columns)}" if columns else "it has no entries table"
        raise CacheError(f"{source}: not a generation cache ({found}); it was left as it was")
