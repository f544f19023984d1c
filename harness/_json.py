"""JSON read from files anyone may have damaged (cell records, items files, baselines, snapshots,
cache rows, a checkpoint's metadata): a document nested deeper than Python's reader goes is text
that is not JSON, refused as a ``ValueError`` like any other, never a ``RecursionError`` escaping
the handlers that name a bad file (``"[" * 100_000`` crashed the report, and a cache row of it a
whole run)."""

from __future__ import annotations

import json
from typing import Any


class NestedTooDeep(ValueError):
    """A JSON document nested deeper than the reader goes (about a thousand levels)."""


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """``json.loads(data, **kwargs)``.

    Raises:
        ValueError: ``data`` is not JSON (``json.JSONDecodeError``), not UTF-8
            (``UnicodeDecodeError``) or nested too deeply to read (:class:`NestedTooDeep`).
    """
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise NestedTooDeep("nested deeper than the JSON reader goes, about a thousand levels"
                            ) from None
