"""The generation cache's store: one SQLite file in WAL mode, JSON values, safe for several
processes; its schema checked at opening.

A damaged cache costs nothing computed: the file's schema version (``PRAGMA user_version``) and
columns are checked when it is opened, and an unusable file (not a database, a directory, another
schema, read-only) is refused then, naming it and what to do, before any model runs; a row that
cannot be read back is a miss (recomputed, counted in ``damaged``, logged); a write that fails (a
full disk) is a warning, and what was computed stays in the run's results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from harness import _json
from harness._regular import refused_kind

SCHEMA_VERSION = 1
COLUMNS = ("key", "kind", "model", "value", "created")
_LOG = logging.getLogger("harness.cache")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def _refuse_network_filesystem(path: Path) -> None:
    from harness.cache.filesystems import NETWORK_FILESYSTEMS, filesystem_type

    kind = filesystem_type(path.parent)
    if kind in NETWORK_FILESYSTEMS:
        raise CacheError(f"{path}: on a {kind} file system; SQLite's write-ahead log needs memory "
                         "shared between the processes, which network file systems do not give, "
                         "so the cache could be corrupted: give each machine a --cache-dir on a "
                         "local disk and fold them together with python -m harness.cache merge")


def _refuse_irregular(path: Path) -> None:
    """A folder, a FIFO or a device where the cache file goes is refused by its kind (SQLite would
    say "disk I/O error" of a FIFO); never "delete" what is no folder of the user's."""
    kind = (refused_kind(path) or "").removesuffix(", not a regular file")
    if kind.startswith("is "):
        advice = "delete it or give" if kind == "is a directory" else "give"
        raise CacheError(f"{path}: {kind}, not a cache file: {advice} another --cache-dir")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CacheError(RuntimeError):
    """The cache file cannot be used; the message names it and says what to do."""


class GenerationCache:
    """A key-value store of model outputs. ``path=None`` keeps it in memory (tests, one-off runs).

    Attributes:
        hits: Lookups answered from the cache since it was opened.
        misses: Lookups that had to be computed.
        damaged: Rows found but unreadable (recomputed, as misses).
        unreadable: Keys looked up where the file itself could not be read (a damaged page),
            recomputed as misses.
        served: How many generations each (model, the name its API answered under) gave
            through :func:`~harness.cache.cached_generate` since the cache was opened, read or
            computed (``Generation.served_by``; none for a model whose answers name none).

    Raises:
        CacheError: the file is not a usable cache of this schema (at opening, before any work).
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 120.0) -> None:
        if path is not None:  # "~/cache.sqlite" is the user's home, not a folder named "~" here
            path = Path(path).expanduser()
        self.path = str(path) if path is not None else ":memory:"
        self.hits = self.misses = self.damaged = self.unreadable = 0
        self.served: Counter[tuple[str, str]] = Counter()
        self._lock = threading.RLock()  # the runner's clip loader reads and writes from a thread
        try:
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                _refuse_network_filesystem(Path(path))
                _refuse_irregular(Path(path))
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._retry_locked("PRAGMA journal_mode=WAL", timeout)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._open_schema(timeout)
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(f"{self.path}: {_unusable(exc)}") from None

    def _open_schema(self, timeout: float) -> None:
        """Create the table in a new file, or check an existing file's version and columns; take
        the write lock once, so that a read-only file is refused now rather than after work."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CacheError(f"{self.path}: a cache of schema version {version}, written by a newer "
                             f"harness; this one reads version {SCHEMA_VERSION}: give another "
                             "--cache-dir")
        self._retry_locked(_SCHEMA, timeout)
        columns = tuple(row[1] for row in self._db.execute("PRAGMA table_info(entries)"))
        if columns != COLUMNS:
            raise CacheError(f"{self.path}: its entries table has columns {list(columns)}, not "
                             f"{list(COLUMNS)}: give another --cache-dir")
        self._retry_locked("BEGIN IMMEDIATE", timeout)
        try:
            if version < SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            self._db.execute("COMMIT")

    def _retry_locked(self, statement: str, timeout: float) -> None:
        """Switching a new file to WAL can report "locked" at once when several processes
        open it together (SQLite does not wait for that lock): try again until ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                self._db.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def close(self) -> None:
        self._db.close()

    def get_many(self, keys: Sequence[str], decode: Callable[[Any], Any] = lambda v: v,
                 count: bool = True) -> dict[str, Any]:
        """The cached values of those ``keys`` that are present and readable, each passed
        through ``decode``; a row that is not JSON or that ``decode`` rejects is a miss (counted
        in :attr:`hits` and :attr:`misses` unless ``count`` is False)."""
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            rows = self._select("key, value", chunk)
            for key, value in rows:
                try:
                    found[key] = decode(_row_value(value))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    self.damaged += 1
                    _LOG.warning("%s: unreadable cache row %s... (%s: %s): recomputing it",
                                 self.path, key[:12], type(exc).__name__, exc)
        if count:
            self.hits += len(found)
            self.misses += len(set(keys) - set(found))
        return found

    def missing(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have no entry (their values are not read)."""
        present: set[str] = set()
        for start in range(0, len(keys), 500):
            present.update(k for (k,) in self._select("key", list(keys[start:start + 500])))
        return set(keys) - present

    def _select(self, columns: str, keys: list[str]) -> list[tuple]:
        """``columns`` of the entries of ``keys``; none, after a warning, where the file cannot
        be read there (a damaged page: "database disk image is malformed"): they are computed
        again, as a damaged row is, and the run goes on."""
        marks = ",".join("?" * len(keys))
        try:
            with self._lock:
                return self._db.execute(f"SELECT {columns} FROM entries WHERE key IN ({marks})",
                                        keys).fetchall()
        except sqlite3.ProgrammingError:  # the harness's own error (a closed cache): raised
            raise
        except sqlite3.DatabaseError as exc:
            self.unreadable += len(keys)
            _LOG.warning("%s: %d entries cannot be read (%s): computing them again; the file is "
                         "damaged (sqlite3's PRAGMA integrity_check says where): delete it or "
                         "give another --cache-dir", self.path, len(keys), exc)
            return []

    def put_many(self, kind: str, model: str, items: Iterable[tuple[str, Any]]) -> bool:
        """Store ``(key, value)`` pairs in one transaction (values must be JSON-serialisable).

        Returns False, after a warning naming the file and the error (a full disk, a file
        locked too long), when they could not be stored: the caller keeps its results.
        """
        now = time.time()
        rows = [(k, kind, model, _row_text(v), now) for k, v in items]
        if not rows:
            return True
        try:
            with self._lock:
                self._insert(rows)
        except sqlite3.Error as exc:
            warnings.warn(f"{self.path}: {len(rows)} results not stored ({exc}); they are kept "
                          "for this run but a rerun computes them again", stacklevel=3)
            return False
        return True

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> int:
        """Rows of another cache (in :data:`COLUMNS`' order, read lazily: a cursor over millions
        of rows is never held whole) in one transaction; an entry already here is kept. Returns
        the entries added (``python -m harness.cache merge``)."""
        with self._lock:
            before = len(self)
            self._insert(rows, keep_existing=True)
            return len(self) - before

    def _insert(self, rows: Iterable[Sequence[Any]], keep_existing: bool = False) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(f"INSERT OR {'IGNORE' if keep_existing else 'REPLACE'} INTO "
                                 f"entries ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # never hide the error that matters
                self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def remove(self, where: str, params: Sequence[Any]) -> tuple[int, bool]:
        """Remove the entries matching ``where`` (SQL over :data:`COLUMNS`, with ``params``) in
        one transaction and give their space back to the disk where no other run holds the
        file; returns the entries removed and whether the space went back
        (``python -m harness.cache prune``)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._db.execute(f"DELETE FROM entries WHERE {where}", params).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            try:  # the file rewritten, then its log emptied into it: both wait for other runs
                self._db.execute("VACUUM")
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError:  # another run writes it: later entries reuse it
                return removed, False
            return removed, not busy


def _unusable(exc: sqlite3.Error | OSError) -> str:
    """Why a cache file cannot be opened for writing, and what to do: a file this user may not
    write (a colleague's, a read-only mount) is a usable cache, not to be deleted."""
    name = getattr(exc, "sqlite_errorname", "")
    if isinstance(exc, PermissionError) or name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN",
                                                             "SQLITE_PERM")):
        return (f"cannot be written here ({exc}): this user cannot write it or its folder; "
                "give a --cache-dir it can write (python -m harness.cache merge NEW OLD copies "
                "a cache's entries, and info reads one in place)")
    return f"not a usable generation cache ({exc}); delete it or give another --cache-dir"


def _row_text(value: Any) -> str:
    """A value as its row's JSON text: orjson's (a five-beam generation in 1.6 µs, against
    5.3 µs with the standard library's), unless the value holds what orjson writes otherwise
    (a non-finite number as ``null``: a beam's ``-Infinity`` log-likelihood must read back as it
    was; text that holds no ``null`` held no non-finite number) or refuses (a lone surrogate,
    an integer over 64 bits, a key that is not a string). The standard library writes those,
    behind a space (:data:`_STDLIB_ROW`), so that they are read back by it too."""
    try:
        text = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return _STDLIB_ROW + json.dumps(value, allow_nan=True)
    return _STDLIB_ROW + json.dumps(value, allow_nan=True) if b"null" in text else text.decode()


_STDLIB_ROW = " "  # leads a row the standard library wrote (JSON allows the space)


def _row_value(text: str) -> Any:
    """A row's JSON value, read by orjson (``python -m bench.overhead``'s "cache lookups" of
    five-beam rows: 97,859 items/s, against 62,513 and 70,803 with the standard library's
    reading). A row the standard library wrote (:func:`_row_text`) is read by it: orjson would
    read an integer over 64 bits as a float, and refuses ``-Infinity``. A row orjson refuses
    (one written before such rows were marked) is read by it too; a damaged one raises."""
    if not text.startswith(_STDLIB_ROW):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return _json.loads(text)
