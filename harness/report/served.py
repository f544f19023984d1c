"""Which model answered. An API's name for a model (``gpt-4o-audio-preview``, ``gemini-2.0-flash``)
is an alias its provider moves to newer snapshots, so the cells of a run, or one cell's answers
(some read from a cache filled months ago, some asked anew), can come from models that are not
the same. Each answer names the snapshot that gave it, and each record keeps how many of its
answers came under each name (``meta.served_by``); the report says them among what its numbers
are comparable with, and names each cell whose answers of one model came under more than one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from harness.record import CellRecord

SHOWN_MIXED = 6  # the cells of mixed snapshots named in the terminal


def served_by(cell: CellRecord) -> dict[str, dict[str, int]]:
    """The cell's ``meta.served_by`` (model -> the names its answers came under -> how many), or
    {} where its answers named none (a local model, a record from before it was kept)."""
    served: Any = cell.meta.get("served_by")
    return dict(served) if isinstance(served, Mapping) else {}


def answered_as(cells: list[CellRecord]) -> str:
    """``gpt-4o from gpt-4o-audio-preview-2024-12-17``, a model a clause, joined with ``, ``;
    where its cells' answers came under several names, each with how many of the cells'
    answers (``gpt-4o from gpt-4o-audio-preview-2024-12-17 (40 answers) and
    gpt-4o-audio-preview-2025-06-03 (12)``); "" where no answer named its model."""
    totals: dict[str, Counter[str]] = {}
    for cell in cells:
        for model, names in served_by(cell).items():
            totals.setdefault(model, Counter()).update(names)
    return ", ".join(f"{model} from {_names(totals[model], unit=' answers')}"
                     for model in sorted(totals))


def mixed_cells(cells: list[CellRecord]) -> str:
    """``gpt-4o iemocap base: gpt-4o from A (20 answers) and B (6)`` for each cell whose answers
    of one model came under more than one name (the first :data:`SHOWN_MIXED`, then how many
    more), joined with ``; ``; or ""."""
    named = []
    for cell in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy)):
        mixed = [f"{model} from {_names(Counter(names), unit=' answers')}"
                 for model, names in sorted(served_by(cell).items()) if len(names) > 1]
        if mixed:
            named.append(f"{cell.model} {cell.dataset} {cell.strategy}: {', '.join(mixed)}")
    more = len(named) - SHOWN_MIXED
    return "; ".join(named[:SHOWN_MIXED]) + (f"; and {more} more" if more > 0 else "")


SHOWN_NAMES = 3  # a model's names shown, commonest first (a server behind a balancer of mixed
# versions can answer under a new one for every item)


def _names(counts: Counter[str], unit: str) -> str:
    """One name alone; several, commonest first, each with its count (the first with ``unit``),
    the first :data:`SHOWN_NAMES` of them, then how many more and their answers."""
    if len(counts) == 1:
        return next(iter(counts))
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    parts = [f"{name} ({n:,}{unit if i == 0 else ''})"
             for i, (name, n) in enumerate(ranked[:SHOWN_NAMES])]
    if len(ranked) > SHOWN_NAMES:
        rest = ranked[SHOWN_NAMES:]
        parts.append(f"{len(rest):,} more names ({sum(n for _, n in rest):,})")
    return ", ".join(parts[:-1]) + " and " + parts[-1]
