"""Persistent generation cache: SQLite in WAL mode, JSON values, safe for several processes.

Every model call of a strategy goes through it, keyed by what determines the answer: model name
and weights revision, the prompt, the audio content, the decoding parameters and seed. So ``bon``
and ``w-bon`` share one beam run, ``alm-v`` and ``w-alm-v`` one B=3 run, and a killed run resumes
without recomputing finished items. Nothing here is pickled.

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
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.models.api import (
    Candidate,
    Decoding,
    Generation,
    LabelScores,
    ModelAPI,
    ModelInfo,
    Request,
)

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
    from harness.filesystems import NETWORK_FILESYSTEMS, filesystem_type

    kind = filesystem_type(path.parent)
    if kind in NETWORK_FILESYSTEMS:
        raise CacheError(f"{path}: on a {kind} file system; SQLite's write-ahead log needs memory "
                         "shared between the processes, which network file systems do not give, "
                         "so the cache could be corrupted: give each machine a --cache-dir on a "
                         "local disk and fold them together with python -m harness.cache merge")


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

    Raises:
        CacheError: the file is not a usable cache of this schema (at opening, before any work).
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 120.0) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self.hits = self.misses = self.damaged = 0
        self._lock = threading.RLock()  # the runner's clip loader reads and writes from a thread
        try:
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                _refuse_network_filesystem(Path(path))
                if Path(path).is_dir():
                    raise CacheError(f"{path}: is a directory, not a cache file: delete it or "
                                     "give another --cache-dir")
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._retry_locked("PRAGMA journal_mode=WAL", timeout)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._open_schema(timeout)
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(f"{self.path}: not a usable generation cache ({exc}); delete it or "
                             "give another --cache-dir") from None

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
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})",
                                        chunk).fetchall()
            for key, value in rows:
                try:
                    found[key] = decode(json.loads(value))
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
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            with self._lock:
                present.update(k for (k,) in self._db.execute(
                    f"SELECT key FROM entries WHERE key IN ({marks})", chunk))
        return set(keys) - present

    def put_many(self, kind: str, model: str, items: Iterable[tuple[str, Any]]) -> bool:
        """Store ``(key, value)`` pairs in one transaction (values must be JSON-serialisable).

        Returns False, after a warning naming the file and the error (a full disk, a file
        locked too long), when they could not be stored: the caller keeps its results.
        """
        now = time.time()
        rows = [(k, kind, model, json.dumps(v, allow_nan=True), now) for k, v in items]
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

    def _insert(self, rows: list[tuple]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(f"INSERT OR REPLACE INTO entries ({', '.join(COLUMNS)}) "
                                 "VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # never hide the error that matters
                self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]


def _model_key(info: ModelInfo) -> list[str]:
    """The model's part of a key: name, weights, dtype and every backend option that can change
    an output (the backend's version, the long-audio policy, kernels)."""
    return [info.name, info.revision, info.dtype, json.dumps(sorted(info.options))]


def generation_key(info: ModelInfo, request: Request, decoding: Decoding) -> str:
    """What determines a generation: model (weights, dtype, options), prompt, audio content,
    decoding and seed."""
    return generation_keys(info, [request], decoding)[0]


def generation_keys(info: ModelInfo, requests: Sequence[Request], decoding: Decoding) -> list[str]:
    """:func:`generation_key` of each request (the model's and the decoding's parts made once)."""
    fixed = "\n".join(["generation", *_model_key(info)])
    tail = decoding.key()
    return [sha256(f"{fixed}\n{sha256(r.prompt)}\n{r.audio_hash}\n{tail}") for r in requests]


def labels_key(info: ModelInfo, request: Request, labels: Sequence[str]) -> str:
    return labels_keys(info, [request], labels)[0]


def labels_keys(info: ModelInfo, requests: Sequence[Request], labels: Sequence[str]) -> list[str]:
    """:func:`labels_key` of each request (the fixed parts made once)."""
    fixed = "\n".join(["labels", *_model_key(info)])
    tail = json.dumps(list(labels))
    return [sha256(f"{fixed}\n{sha256(r.prompt)}\n{r.audio_hash}\n{tail}") for r in requests]


CHUNK = 256  # requests per model call: each chunk is stored before the next one starts


def cached_generate(model: ModelAPI, requests: Sequence[Request], decoding: Decoding,
                    cache: GenerationCache | None, chunk: int = CHUNK,
                    progress: Callable[[int], None] | None = None) -> list[Generation]:
    """``model.generate`` through the cache: only missing requests reach the model.

    Results are stored chunk by chunk, so a run killed mid-way loses at most one chunk, and
    ``progress(items done)`` is told after each. Failed generations are not stored, so a rerun
    tries them again.
    """
    if cache is None:
        cache = GenerationCache()  # in memory: the same chunking and progress, nothing kept
    chunk = int(os.environ.get("HARNESS_CACHE_CHUNK", chunk))
    keys = generation_keys(model.info, requests, decoding)
    found = cache.get_many(keys, _decode)
    missing = [i for i, k in enumerate(keys) if k not in found]
    out: dict[str, Generation] = {}
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        fresh = _generate_read(model, [requests[i] for i in part], decoding)
        put_generations(cache, model, [(keys[i], g) for i, g in zip(part, fresh)])
        out.update((keys[i], g) for i, g in zip(part, fresh))
        if progress is not None:
            progress(len(keys) - len(missing) + start + len(part))
    return [out[k] if k in out else found[k] for k in keys]


def put_generations(cache: GenerationCache, model: ModelAPI,
                    pairs: Iterable[tuple[str, Generation]]) -> bool:
    """Store generations under their keys; failed ones are not stored (a rerun tries them
    again). False when the cache could not store them (see :meth:`GenerationCache.put_many`)."""
    return cache.put_many("generation", model.info.name,
                          [(key, _encode(g)) for key, g in pairs if g.error is None])


def cached_label_logprobs(model: ModelAPI, requests: Sequence[Request], labels: Sequence[str],
                          cache: GenerationCache | None,
                          progress: Callable[[int], None] | None = None) -> list[LabelScores]:
    """``model.label_logprobs`` through the cache; failed rows (an error, or NaN) are not stored;
    ``progress(items done)`` once they are all scored, as :func:`cached_generate` tells it."""
    import numpy as np

    if cache is None:
        scored = _label_logprobs_read(model, requests, labels)
        if progress is not None:
            progress(len(requests))
        return scored
    keys = labels_keys(model.info, requests, labels)
    found = cache.get_many(keys, lambda value: _decode_scores(value, len(labels)))
    missing = [i for i, k in enumerate(keys) if k not in found]
    fresh = _label_logprobs_read(model, [requests[i] for i in missing], labels) if missing else []
    cache.put_many("labels", model.info.name,
                   [(keys[i], _encode_scores(row)) for i, row in zip(missing, fresh)
                    if row.error is None and np.isfinite(row.logprobs).all()])
    rows = {keys[i]: row for i, row in zip(missing, fresh)}
    if progress is not None:
        progress(len(keys))
    return [rows[k] if k in rows else found[k] for k in keys]


def _read(requests: Sequence[Request]) -> tuple[list[tuple[int, Request]], dict[int, str]]:
    """The requests with their audio read where it was not yet (by position), and why each one
    whose clip could not be read failed."""
    from harness.data import DataError

    ready, failed = [], {}
    for i, r in enumerate(requests):
        try:
            ready.append((i, r.with_audio()))
        except DataError as exc:
            failed[i] = f"audio error: {exc}"
    return ready, failed


def _generate_read(model: ModelAPI, requests: Sequence[Request], decoding: Decoding
                   ) -> list[Generation]:
    """``model.generate`` on the requests with their audio read; a clip that cannot be read
    costs its own request (an error generation), never the others."""
    ready, failed = _read(requests)
    fresh = iter(model.generate([r for _, r in ready], decoding) if ready else [])
    return [Generation(error=failed[i]) if i in failed else next(fresh)
            for i in range(len(requests))]


def _label_logprobs_read(model: ModelAPI, requests: Sequence[Request], labels: Sequence[str]
                         ) -> list[LabelScores]:
    """``model.label_logprobs`` as :func:`_generate_read` does ``generate``."""
    ready, failed = _read(requests)
    fresh = iter(model.label_logprobs([r for _, r in ready], labels) if ready else [])
    return [LabelScores.failed(len(labels), failed[i]) if i in failed else next(fresh)
            for i in range(len(requests))]


def _encode(generation: Generation) -> dict:
    out = {"candidates": [{"text": c.text, "n_tokens": c.n_tokens, "logprob": c.logprob,
                           "finite": c.finite} for c in generation.candidates],
           "usage": generation.usage}  # Candidate's fields (asdict deep-copies: 10x slower)
    if generation.notes:
        out["notes"] = list(generation.notes)
    return out


def _decode(value: dict) -> Generation:
    """A stored generation; raises (TypeError, KeyError, ValueError) on a row of another shape."""
    candidates = tuple(Candidate(**c) for c in value["candidates"])
    if not all(isinstance(c.text, str) for c in candidates) or not isinstance(value["usage"], dict):
        raise ValueError("a candidate's text or the usage has the wrong type")
    return Generation(candidates, usage=value["usage"], notes=tuple(value.get("notes", ())))


def _encode_scores(row: LabelScores) -> list | dict:
    """A row of label scores as stored: the plain list, or with its notes when it has some."""
    values = [float(v) for v in row.logprobs]
    return {"logprobs": values, "notes": list(row.notes)} if row.notes else values


def _decode_scores(value: list | dict, width: int) -> LabelScores:
    """A stored row of label scores; raises (ValueError, KeyError, TypeError) on another shape."""
    import numpy as np

    notes = tuple(value.get("notes", ())) if isinstance(value, dict) else ()
    row = np.asarray(value["logprobs"] if isinstance(value, dict) else value, dtype=np.float64)
    if row.shape != (width,):
        raise ValueError(f"a row of {row.shape} scores for {width} labels")
    return LabelScores(row, None, notes)


def merge_caches(target: str | Path, sources: Sequence[str | Path]) -> dict[str, int]:
    """Fold the entries of ``sources`` into ``target`` (created if needed); an entry already in
    the target is kept. Returns the entries added per source. Each source is checked as a cache
    (schema, columns) before anything is copied."""
    added: dict[str, int] = {}
    merged = GenerationCache(target)
    try:
        for source in sources:
            GenerationCache(source).close()  # refused here when it is not a cache of this schema
            before = len(merged)
            merged._db.execute("ATTACH DATABASE ? AS source", (str(source),))
            try:
                merged._db.execute("BEGIN IMMEDIATE")
                merged._db.execute(f"INSERT OR IGNORE INTO entries ({', '.join(COLUMNS)}) "
                                   f"SELECT {', '.join(COLUMNS)} FROM source.entries")
                merged._db.execute("COMMIT")
            finally:
                merged._db.execute("DETACH DATABASE source")
            added[str(source)] = len(merged) - before
    finally:
        merged.close()
    return added


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.cache merge TARGET SOURCE...``: fold several machines' caches into one."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.cache")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="fold caches into TARGET (existing entries kept)")
    merge.add_argument("target")
    merge.add_argument("sources", nargs="+")
    args = parser.parse_args(argv)
    try:
        for source, count in merge_caches(args.target, args.sources).items():
            print(f"{source}: {count} entries added to {args.target}")
    except CacheError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
