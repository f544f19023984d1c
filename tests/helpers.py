"""Shared test helpers: copies of the fixture corpora that a test may damage."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED_CREMA_D = Path(__file__).resolve().parents[2] / "shared" / "data" / "crema-d"


def corpus_copy(name: str, tmp_path: Path) -> Path:
    """A writable copy of ``fixtures/<name>`` under ``tmp_path``."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target
