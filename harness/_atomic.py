"""Files written whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def write_whole(path: str | os.PathLike[str], content: bytes | str | Iterable[str]) -> Path:
    """Write ``path`` whole or not at all: into a hidden temporary file beside it, renamed over
    it once complete, so that a crash mid-write leaves the old file (or none); the temporary
    file is removed when the write fails (a full disk leaves nothing behind). ``content``:
    bytes, text, or pieces of text written one after the other in UTF-8 (a 100,000-item
    record is never one string)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as f:  # as given
                for part in [content] if isinstance(content, str) else content:
                    f.write(part)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
