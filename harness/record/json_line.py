"""One line of strict JSON per item, written and read by orjson: an evidence line of a five-beam
item takes 6.5 µs with orjson and took 29.6 µs with the standard library's encoder (``python -m
bench.overhead``'s stages, this project's 2-core machine), and a cell writes one per item (the
report reads each and writes it again).

The rules are those the evidence has always had: JSON has no NaN or infinity, so such a number (a
beam's missing α) is written as null; numpy arrays and scalars are written as lists and numbers.
orjson writes non-ASCII text as UTF-8, not ``\\u`` escapes. A value orjson refuses (a string with
a lone surrogate, which a server's ``"\\ud800"`` decodes to; an integer over 64 bits; a numpy
array that is not contiguous) is written by the standard library under the same rules; a line
orjson will not read (the ``\\ud800`` escape such a string is written as) is read by it too.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson

from harness import _json

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def json_line(value: Any) -> bytes:
    """``value`` as one line of strict JSON, UTF-8, without the newline.

    Raises:
        TypeError: a value of a type JSON cannot hold (as ``json.dumps`` would).
    """
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(_plain(value), allow_nan=False).encode()


def _plain(value: Any) -> Any:
    """``value`` with non-finite numbers as None and numpy's arrays and scalars as Python's."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def read_json_line(raw: bytes) -> Any:
    """One line of strict JSON (UTF-8) as its value.

    Raises:
        ValueError: the line is not UTF-8 or not strict JSON (NaN and infinities are not JSON;
            nor is a number beyond a double's range, such as 1e999, here).
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # a lone surrogate's escape, or a line that is not JSON
        return _json.loads(raw.decode("utf-8"), parse_constant=_not_json, parse_float=_finite)


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not JSON (the harness writes strict JSON)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond a double's range")
    return value
