"""Values that reach the harness as text or JSON (``--dataset-option``, ``--strategy-arg``,
``--model-arg``, ini files): a flag read one way everywhere. JSON spells false ``false``; typed as
``False`` it is the text "False", which Python would read as true."""

from __future__ import annotations

from typing import Any

from harness import _json

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def flag(value: Any) -> bool:
    """True or false: a bool, 0 or 1, or its spelling as text (``true``/``false``, ``yes``/``no``,
    ``on``/``off``, ``1``/``0``, any case).

    Raises:
        ValueError: anything else ("takes true or false").
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("takes true or false")


def named_flag(name: str, value: Any) -> bool:
    """:func:`flag`, refusing anything else as ``<name> must be true or false, not <value>``
    (a setting's own check: strategy, fast-path and server options)."""
    try:
        return flag(value)
    except ValueError:
        raise ValueError(f"{name} must be true or false, not {value!r}") from None


def whole_number(name: str, value: Any, least: int = 1) -> int:
    """``value`` itself where it is a whole number of at least ``least`` (a bool is no count),
    else ``<name> must be a whole number of at least <least>, not <value>``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be a whole number of at least {least}, not {value!r}")
    return value


def typed(raw: str) -> Any:
    """A value typed as text: read as JSON where it parses (``[1, 2]``, ``7``, ``false``), else
    the text itself (``Test1``)."""
    try:
        return _json.loads(raw)
    except ValueError:
        return raw
