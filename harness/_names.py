"""A name that is not one of those known, said one way everywhere: with the closest names."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any


def unknown_name(kind: str, name: Any, known: Sequence[str]) -> str:
    """``unknown strategy argument 'beam'; did you mean 'beams'? (known: beams, ...)``; case is
    ignored in finding the closest (``'JS'`` -> ``'js'``)."""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(lowered[c]) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})"
