"""Shared test helpers: copies of the fixture corpora that a test may damage, and requests
built from the fixture corpora."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
