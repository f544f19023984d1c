"""Persistent generation cache: SQLite in WAL mode, JSON values, safe for several processes.

Every model call of a strategy goes through it, keyed by what determines the answer: model name
and weights revision, the prompt, the audio content, the decoding parameters and seed. So ``bon``
and ``w-bon`` share one beam run, ``alm-v`` and ``w-alm-v`` one B=3 run, and a killed run resumes
without recomputing finished items. Nothing here is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class GenerationCache:
    """A key-value store of model outputs. ``path=None`` keeps it in memory (tests, one-off runs).

    Attributes:
        hits: Lookups answered from the cache since it was opened.
        misses: Lookups that had to be computed.
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 120.0) -> None:
        self.path = str(path) if path is not None else ":memory:"
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self._retry_locked("PRAGMA journal_mode=WAL", timeout)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._retry_locked(_SCHEMA, timeout)
        self.hits = 0
        self.misses = 0

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

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The cached values of those ``keys`` that are present."""
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk)
            found.update((k, json.loads(v)) for k, v in rows)
        self.hits += len(found)
        self.misses += len(set(keys) - set(found))
        return found

    def put_many(self, kind: str, model: str, items: Iterable[tuple[str, Any]]) -> None:
        """Store ``(key, value)`` pairs in one transaction (values must be JSON-serialisable)."""
        now = time.time()
        rows = [(k, kind, model, json.dumps(v, allow_nan=True), now) for k, v in items]
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]


def generation_key(info: ModelInfo, request: Request, decoding: Decoding) -> str:
    """What determines a generation: model and weights, prompt, audio content, decoding, seed."""
    return sha256("\n".join(["generation", info.name, info.revision, sha256(request.prompt),
                             request.audio_hash, decoding.key()]))


def labels_key(info: ModelInfo, request: Request, labels: Sequence[str]) -> str:
    return sha256("\n".join(["labels", info.name, info.revision, sha256(request.prompt),
                             request.audio_hash, json.dumps(list(labels))]))


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
    keys = [generation_key(model.info, r, decoding) for r in requests]
    found = cache.get_many(keys)
    missing = [i for i, k in enumerate(keys) if k not in found]
    out: dict[str, Generation] = {}
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        fresh = model.generate([requests[i] for i in part], decoding)
        cache.put_many("generation", model.info.name,
                       [(keys[i], _encode(g)) for i, g in zip(part, fresh) if g.error is None])
        out.update((keys[i], g) for i, g in zip(part, fresh))
        if progress is not None:
            progress(len(keys) - len(missing) + start + len(part))
    return [out[k] if k in out else _decode(found[k]) for k in keys]


def cached_label_logprobs(model: ModelAPI, requests: Sequence[Request], labels: Sequence[str],
                          cache: GenerationCache | None) -> list[LabelScores]:
    """``model.label_logprobs`` through the cache; failed rows (an error, or NaN) are not stored."""
    import numpy as np

    if cache is None:
        return list(model.label_logprobs(requests, labels))
    keys = [labels_key(model.info, r, labels) for r in requests]
    found = cache.get_many(keys)
    missing = [i for i, k in enumerate(keys) if k not in found]
    fresh = model.label_logprobs([requests[i] for i in missing], labels) if missing else []
    cache.put_many("labels", model.info.name,
                   [(keys[i], _encode_scores(row)) for i, row in zip(missing, fresh)
                    if row.error is None and np.isfinite(row.logprobs).all()])
    rows = {keys[i]: row for i, row in zip(missing, fresh)}
    return [rows[k] if k in rows else _decode_scores(found[k]) for k in keys]


def _encode(generation: Generation) -> dict:
    out = {"candidates": [asdict(c) for c in generation.candidates], "usage": generation.usage}
    if generation.notes:
        out["notes"] = list(generation.notes)
    return out


def _decode(value: dict) -> Generation:
    return Generation(tuple(Candidate(**c) for c in value["candidates"]), usage=value["usage"],
                      notes=tuple(value.get("notes", ())))


def _encode_scores(row: LabelScores) -> list | dict:
    """A row of label scores as stored: the plain list, or with its notes when it has some."""
    values = [float(v) for v in row.logprobs]
    return {"logprobs": values, "notes": list(row.notes)} if row.notes else values


def _decode_scores(value: list | dict) -> LabelScores:
    import numpy as np

    if isinstance(value, dict):
        return LabelScores(np.asarray(value["logprobs"], dtype=np.float64), None,
                           tuple(value.get("notes", ())))
    return LabelScores(np.asarray(value, dtype=np.float64))
