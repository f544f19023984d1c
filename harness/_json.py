"""JSON read from files anyone may have damaged (cell records, items files, baselines, snapshots,
cache rows, a checkpoint's metadata): a document nested deeper than Python's reader goes is text
that is not JSON, refused as a ``ValueError`` like any other, never a ``RecursionError`` escaping
the handlers that name a bad file (``"[" * 100_000`` crashed the report, and a cache row of it a
whole run). So is an integer beyond a double's range (``1`` and 400 zeros): Python reads it, but
every number the harness reads is used as a float, and the conversion's ``OverflowError`` crashed
the report, a baseline's gate and a record's reading (orjson, the fast readers' first try, refuses
such a number too: "number is infinity when parsed as double")."""

from __future__ import annotations

import json
from typing import Any


class NestedTooDeep(ValueError):
    """A JSON document nested deeper than the reader goes: about 1,000 levels on Python 3.11,
    1,500 on 3.12, 10,000 on 3.13 (its C scanner's own limit)."""


class NumberTooLarge(ValueError):
    """A JSON integer beyond a double's range (about 1.8e308), which no float can hold."""


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """``json.loads(data, **kwargs)``.

    Raises:
        ValueError: ``data`` is not JSON (``json.JSONDecodeError``), not UTF-8
            (``UnicodeDecodeError``), nested too deeply to read (:class:`NestedTooDeep`), or
            holds an integer no float can hold (:class:`NumberTooLarge`).
    """
    kwargs.setdefault("parse_int", _int_a_double_holds)  # 0.4 µs an integer; the files hold few
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise NestedTooDeep("nested deeper than the JSON reader goes: 1,000 levels or more, by "
                            "Python's version") from None


def _int_a_double_holds(text: str) -> int:
    value = int(text)  # over 4,300 digits: Python's own ValueError
    if len(text) < 300:  # no double is exceeded below 309 digits
        return value
    try:
        float(value)
    except OverflowError:
        raise NumberTooLarge(f"an integer of {len(text.lstrip('-'))} digits, beyond a double's "
                             "range") from None
    return value
