"""A run's results as plain text for a terminal: every cell's row of the strategies table with
its validity and accuracy, under the lines that say what the numbers are comparable with (which
items, how a strategy is paired with its base, the tie rule, the prompts, the bins, α)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable

from harness.record import CellRecord

Table = tuple[list[str], list[list[tuple[str, str]]]]


def results_lines(cells: list[CellRecord], tables: dict[str, Table]) -> list[str]:
    """The conventions, then one aligned row per cell (by model and dataset, ``base`` first):
    valid items, JS, BC and R² (a strategy's paired against its base), the items paired and the
    accuracy. Nothing for a run without cells."""
    if not cells:
        return []
    header, rows = tables["strategies"]
    by_cell = {(row[0][0], row[1][0], row[2][0]): row for row in rows}
    table = [["model", "dataset", "strategy", "valid", *header[3:-1], "paired", "acc"]]
    for cell in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy != "base", c.strategy)):
        acc = cell.metrics.mean("acc")
        table.append([cell.model, cell.dataset, cell.strategy,
                      f"{cell.metrics.n_valid}/{cell.metrics.n_items}",
                      *(text for text, _ in by_cell[cell.model, cell.dataset, cell.strategy][3:]),
                      "–" if math.isnan(acc) else f"{acc:.4f}"])
    return [*conventions(cells, tables), *aligned(table)]


def conventions(cells: list[CellRecord], tables: dict[str, Table]) -> list[str]:
    """What a reader needs to compare these numbers with others, wrapped for a terminal."""
    _, item_rows = tables["items"]
    items = "; ".join(
        f"{row[0][0]}{'' if row[1][0] == '{}' else ' ' + row[1][0]} {row[2][0]} items"
        + ("" if not row[3][0] else " (the paper's N)" if row[4][0] == "same N"
           else f" (the paper's: {row[3][0]})") for row in item_rows)
    prompts = _one_or_mixed(f"{c.meta['prompts'].get('set')} v{c.meta['prompts'].get('version')}"
                            for c in cells if isinstance(c.meta.get("prompts"), dict)) or "none"
    bins = _one_or_mixed(str(c.metrics.bins.get("method", "width")) for c in cells)
    alpha = _one_or_mixed(str((c.meta.get("strategy_config") or {}).get("alpha"))
                          for c in cells if c.strategy == "w-bon")
    text = (f"Items: {items}. JS (lower is better), BC and R² (higher): each cell's mean over its "
            "valid items; a strategy's row beside its model's base: both over the items valid in "
            "both (paired), and its change against base in % (+ is better; * where the paired "
            "bootstrap 95% CI of the change excludes 0). acc: argmax against the annotators' "
            f"majority, ties to the first label. Prompts: {prompts}; ambiguity bins: {bins}"
            + (f"; W-BoN's alpha: {alpha}" if alpha else "")
            + ". Each mean's CI and the rest: tables.md, report.html.")
    return textwrap.wrap(text, width=100)


def _one_or_mixed(values: Iterable[str]) -> str:
    found = sorted(set(values))
    return found[0] if len(found) == 1 else ", ".join(found) if found else ""


def aligned(table: list[list[str]]) -> list[str]:
    """Rows of text in columns, each as wide as its widest entry; a character that would not
    print (a terminal's escape sequence in a model's name, a line break) shown as ``?``."""
    table = [["".join(ch if ch.isprintable() else "?" for ch in text) for text in row]
             for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip()
            for row in table]
