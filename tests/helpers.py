"""Shared test helpers: copies of the fixture corpora that a test may damage, and requests
built from the fixture corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import embedded_path

FIXTURES = embedded_path()
SHARED_CREMA_D = Path(__file__).resolve().parents[2] / "shared" / "data" / "crema-d"


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
