"""Shared test helpers: copies of the fixture corpora that a test may damage, requests built
from the fixture corpora, and a call that must not wait for ever."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import embedded_path

FIXTURES = embedded_path()
# a checkout of the public CREMA-D release (its processedResults/), to check the shipped copy against
CREMA_D_RELEASE = Path(os.environ["CREMA_D_RELEASE"]) if os.environ.get("CREMA_D_RELEASE") else None


def corpus_copy(name: str, tmp_path: Path) -> Path:
    """A writable copy of ``harness/embedded/<name>`` under ``tmp_path``."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def requests_for(corpus: str, n: int | None = None):
    """A fixture corpus and base-prompt requests for its first ``n`` items (all by default)."""
    from harness.data import load_dataset
    from harness.models import Request
    from harness.prompts import base_prompt

    dataset = load_dataset(corpus)
    return dataset, [Request(it.load_audio(), base_prompt(corpus, it.transcript, dataset.labels), it.id)
                     for it in list(dataset)[:n]]


class ClipReads:
    """The clips a run read: each clip's path once per decode of its samples and once per hash
    of its bytes (a clip seen for the first time is read once for both, and is in both)."""

    def __init__(self) -> None:
        self.decoded: list = []
        self.hashed: list = []

    def counts(self) -> dict[str, int]:
        return {"decoded": len(self.decoded), "hashed": len(self.hashed)}


def watch_clip_reads(monkeypatch) -> ClipReads:
    """Record, from here on, every clip the runner decodes or hashes."""
    import harness.strategies._stream as stream
    from harness.data import clips as clips_module

    reads = ClipReads()
    real_read, real_first = stream.read_audio, stream.first_sight

    def read(path, *args, **kwargs):
        reads.decoded.append(path)
        return real_read(path, *args, **kwargs)

    def first(path, *args, **kwargs):
        facts, samples = real_first(path, *args, **kwargs)
        if samples is not None:
            reads.decoded.append(path)
        return facts, samples

    def hashing(real):
        def digest(what):
            reads.hashed.append(what if isinstance(what, (str, os.PathLike)) else "(bytes)")
            return real(what)
        return digest

    monkeypatch.setattr(stream, "read_audio", read)
    monkeypatch.setattr(stream, "first_sight", first)
    for name in ("_digest", "_digest_bytes"):
        monkeypatch.setattr(clips_module, name, hashing(getattr(clips_module, name)))
    return reads


@contextlib.contextmanager
def corpora_kept():
    """The corpus registries as they were once the block ends (a test registers a corpus of its
    own): both dicts are imported by name elsewhere, so they are emptied and refilled, not
    replaced."""
    from harness.data import loader
    from harness.prompts import ADDED_WORDING

    kept = [(corpora, dict(corpora)) for corpora in (loader.CORPORA, ADDED_WORDING)]
    try:
        yield
    finally:
        for corpora, before in kept:
            corpora.clear()
            corpora.update(before)


def returns_in_time(call: Callable[[], Any], seconds: float = 60.0) -> Any:
    """``call()`` run in a daemon thread: what it returns, or what it raises raised here; the test
    fails if it is still running after ``seconds`` (a reader waiting on a FIFO never returns)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 (raised again in the test's thread)
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds:g} s (waiting on a FIFO?)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
