"""Settings read from environment variables (``HARNESS_CHUNK``, ``HARNESS_READERS``,
``HARNESS_CACHE_CHUNK``, ``HARNESS_MAX_CLIP_SECONDS``): a value that is not what the setting
must be is refused naming the variable, rather than failing later as something else (a chunk
size of 0 or -5 once ended in an IndexError, and a clip limit of ``abc`` made every clip
"unreadable audio")."""

from __future__ import annotations

import math
import os


def positive_int(name: str, default: int) -> int:
    """The variable as a whole number of at least 1, ``default`` when unset or empty.

    Raises:
        ValueError: it is set to anything else (the message names it).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name}={raw!r}: must be a whole number of at least 1")
    return value


def positive_float(name: str) -> float | None:
    """The variable as a finite number above 0, None when unset or empty.

    Raises:
        ValueError: it is set to anything else (the message names it).
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={raw!r}: must be a number of seconds above 0")
    return value
