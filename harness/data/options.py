"""Corpus options (``load_dataset(name, **options)``, ``--dataset-option CORPUS.NAME=VALUE``):
what each corpus takes, each value checked before any file is read.

A value of the wrong kind used to reach the reader: ``merge_excited=False`` typed on the command
line is the text "False" (JSON spells it ``false``), which Python reads as true, so the option was
silently on; ``sessions=abc`` or ``split=5`` failed every cell with a bare traceback. Each option
now has a checker that returns its value in one form or raises :class:`OptionError` naming the
corpus, the option, what it takes and what it was given; ``pytest evals`` runs them at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness._values import flag

__all__ = ["Checker", "OptionError", "check_options", "file_path", "flag", "one_of", "some_of",
           "whole_numbers"]
Checker = Callable[[Any], Any]
_WHOLE_NUMBERS = "takes a whole number of at least 1 or a list of them, e.g. [1, 2]"


class OptionError(ValueError):
    """A corpus option that does not exist, or a value it does not take."""


def one_of(choices: Sequence[str]) -> Checker:
    """One of ``choices``, spelt exactly."""
    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise ValueError(f"takes one of {', '.join(choices)}")

    return check


def some_of(choices: Sequence[str]) -> Checker:
    """None (all), one of ``choices`` or a non-empty list of them, as a tuple in ``choices``'
    order."""
    single = one_of(choices)

    def check(value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"takes one of {', '.join(choices)} or a list of them")
        try:
            given = {single(v) for v in values}
            return tuple(c for c in choices if c in given)  # in their own order: one spelling
        except ValueError:
            raise ValueError(f"takes one of {', '.join(choices)} or a list of them") from None

    return check


def whole_numbers(value: Any) -> tuple[int, ...] | None:
    """None (all), a whole number of at least 1 or a non-empty list of them, as a sorted tuple."""
    if value is None:
        return None
    values = [value] if isinstance(value, (int, str)) else value
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(_WHOLE_NUMBERS)
    out = []
    for v in values:
        text = v.strip() if isinstance(v, str) else None
        if isinstance(v, bool) or not (isinstance(v, int) or (text and text.isdigit())):
            raise ValueError(_WHOLE_NUMBERS)
        out.append(int(v))
    if min(out) < 1:
        raise ValueError(_WHOLE_NUMBERS)
    return tuple(sorted(set(out)))  # one spelling of one selection


def file_path(value: Any) -> str | bytes | None:
    """None (the default file) or a path (text); whether it exists is the reader's to say."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and value.strip() and "\0" not in value:
        return value
    raise ValueError("takes a file's path")


def check_options(corpus: str, options: Mapping[str, Any], known: Mapping[str, Checker]
                  ) -> dict[str, Any]:
    """``options`` with each value in its checked form.

    Raises:
        OptionError: an option ``corpus`` does not take (naming those it does), or a value its
            option does not take (naming what it takes and what it was given).
    """
    out = {}
    for name, value in options.items():
        if name not in known:
            raise OptionError(f"unknown {corpus} option {name!r} (known: {', '.join(known)})")
        try:
            out[name] = known[name](value)
        except ValueError as exc:
            raise OptionError(f"{corpus} option {name} {exc}, not {value!r}") from None
    return out
