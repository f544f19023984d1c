"""What a corpus reader returns, held to what a :class:`~harness.data.Dataset` needs before any
model sees it.

A reader of one's own (:func:`harness.data.register_corpus`) can return what the built-in ones
never do: vote counts for another number of labels (which failed the whole cell in the metrics),
negative or all-zero votes (an infinite JS, NaN R²), two items with one id. Each such item is a
recorded problem naming it and is left out; the others load. Labels that are not distinct names,
or a result of another shape, make the corpus unusable: a DataError naming the reader's root.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.dataset import Item
from harness.data.problems import DataError, ProblemLog


def checked_output(name: str, root: Path, output: Any, problems: ProblemLog
                   ) -> tuple[tuple[str, ...], list[Item], Counter]:
    """``(labels, items, skipped)`` as the reader of corpus ``name`` returned them, checked:
    an unusable item becomes an error in ``problems`` and is left out.

    Raises:
        DataError: the output is not three things, its labels are not distinct non-empty
            names, or ``skipped`` is not counts by reason.
    """
    try:
        labels, items, skipped = output
    except (TypeError, ValueError):
        raise DataError(root, f"the {name} reader returned a {type(output).__name__}, not "
                              "(labels, items, skipped)") from None
    if isinstance(labels, str) or not isinstance(labels, Iterable):
        raise DataError(root, f"the {name} reader's labels are not a sequence of names")
    labels = tuple(labels)
    if not labels or not all(isinstance(x, str) and x.strip() for x in labels) \
            or len(set(labels)) != len(labels):
        raise DataError(root, f"the {name} reader's labels are not one or more distinct names: "
                              f"{str(labels)[:200]}")
    if not (isinstance(skipped, Mapping)  # numpy's integers too (pandas' value_counts)
            and all(isinstance(k, str) and isinstance(v, Integral) for k, v in skipped.items())):
        raise DataError(root, f"the {name} reader's skipped items are not counts by reason")
    counts = Counter({reason: int(n) for reason, n in skipped.items()})  # plain ints: JSON
    return labels, _usable(list(items), labels, root, problems), counts


def _usable(items: list[Any], labels: tuple[str, ...], root: Path, problems: ProblemLog
            ) -> list[Item]:
    shaped: list[Item] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        why = _why_not(item, labels, seen)
        if why is None:
            shaped.append(item)
            seen.add(item.id)
        else:
            problems.error(getattr(item, "audio_path", root), None,
                           f"item {n} ({str(getattr(item, 'id', '?'))[:100]!r}) {why}; left out")
    if not shaped:
        return shaped
    votes = np.stack([item.votes for item in shaped])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(votes).all(axis=1) | (votes < 0).any(axis=1) | ~(votes.sum(axis=1) > 0)
    for i in np.flatnonzero(bad):
        problems.error(shaped[i].audio_path, None,
                       f"item {shaped[i].id!r}: votes {votes[i].tolist()} are not counts (finite, "
                       "none negative, not all zero); left out")
    return [item for item, unusable in zip(shaped, bad) if not unusable]


def _why_not(item: Any, labels: tuple[str, ...], seen: set[str]) -> str | None:
    """Why ``item`` cannot be one of the corpus's items (its votes' values aside), or None."""
    if not isinstance(item, Item):
        return f"is a {type(item).__name__}, not a harness.data.Item"
    if not (isinstance(item.id, str) and item.id):
        return "has no id"
    if item.id in seen:
        return "has the id of an earlier item"
    if item.labels != labels and tuple(item.labels) != labels:
        return f"has labels {str(tuple(item.labels))[:200]}, not the corpus's"
    if item.votes.shape != (len(labels),):
        return f"has {item.votes.size} vote counts for {len(labels)} labels"
    return None
