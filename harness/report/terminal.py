"""A run's results as plain text for a terminal: every cell's row of the strategies table with
its validity and accuracy, under the lines that say what the numbers are comparable with (which
items, how a strategy is paired with its base, the tie rule, the prompts, the bins, α)."""

from __future__ import annotations

import dataclasses
import math
import shlex
import textwrap
from collections.abc import Iterable

from harness.metrics import MIN_PAIRED_ITEMS
from harness.record import CellRecord
from harness.report.choices import fmt
from harness.report.paired import change_suffix
from harness.report.served import answered_as, mixed_cells
from harness.report.tables import DISTRIBUTION, TITLES, dropped_data, dropped_text
from harness.report.verifier import top_shared_lines

Table = tuple[list[str], list[list[tuple[str, str]]]]


def results_lines(cells: list[CellRecord], tables: dict[str, Table]) -> list[str]:
    """The conventions, then one aligned row per cell (by model and dataset, ``base`` first):
    valid items; JS, BC, R² and accuracy, each the cell's own mean ± half its 95% CI, and beside
    a strategy's its paired change against base (from the strategies table); the items paired.
    Nothing for a run without cells."""
    if not cells:
        return []
    _, rows = tables["strategies"]
    by_cell = {(row[0][0], row[1][0], row[2][0]): row for row in rows}
    table = [["model", "dataset", "strategy", "valid", *(TITLES[m] for m in DISTRIBUTION),
              "paired", "acc"]]
    for cell in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy != "base", c.strategy)):
        row = by_cell[cell.model, cell.dataset, cell.strategy]
        changes = [change_suffix(text) for text, _ in row[3:3 + len(DISTRIBUTION)]]
        table.append([cell.model, cell.dataset, cell.strategy,
                      _valid(cell),
                      *(_with_uncertainty(cell, m) + change
                        for m, change in zip(DISTRIBUTION, changes)),
                      row[-1][0], _with_uncertainty(cell, "acc")])
    lines = [*conventions(cells, tables), *aligned(table)]
    for ties, what in _TIES_TAKEN.items():
        if shared := top_shared_lines(cells, ties):
            lines += wrapped(_printable(
                f"alm-v {what} where two candidates or more shared its verifier's top score: "
                f"{shared} (the verifier and ties tables: tables.md, report.html)."))
    if mixed := mixed_cells(cells):
        lines += wrapped(_printable(
            f"Cells whose answers came from more than one snapshot of a model (its provider "
            f"moved the name to a newer one, or some answers were cached before): {mixed}. "
            "Their means mix models: name a snapshot (--model-arg MODEL.model=NAME) and run "
            "them again."))
    if partly := _partly_invalid(cells):
        lines += wrapped(_printable(
            f"Cells with invalid items (left out of their means{_UNLESS if _filled(cells) else ''}"
            f"), JS with them left out and with each scored as a uniform guess: {partly} (the "
            "invalid table: tables.md, report.html)."))
    return lines


def wrapped(text: str, width: int = 100) -> list[str]:
    """``text`` in lines of at most ``width``, never broken inside a word: a model's, corpus's or
    snapshot's name (``gpt-4o-audio-preview-2024-12-17``) is not cut at a hyphen."""
    return textwrap.wrap(text, width, break_on_hyphens=False)


def _valid(cell: CellRecord) -> str:
    """``9/26``: the items with a distribution of the model's own, of the cell's; ``9+16/26``
    where the cell scored 16 answers that gave none as uniform guesses (its means over 25)."""
    guessed = cell.metrics.guessed
    return f"{cell.metrics.n_valid}{f'+{guessed}' if guessed else ''}/{cell.metrics.n_items}"


SHOWN_INVALID = 6  # the cells with invalid items named in the terminal; the table has every one


def _partly_invalid(cells: list[CellRecord]) -> str:
    """``tiny-qwen2-audio iemocap cot 18 of 26 valid, 0.5100 and 0.5500``, for each cell whose
    record keeps both readings of its invalid items (the first :data:`SHOWN_INVALID`, then how
    many more), joined with ``; ``; or ``""``."""
    named = []
    for c in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy)):
        left, uniform = ((c.metrics.invalid.get(r) or {}).get("js") for r in ("left_out", "uniform"))
        if uniform is not None:
            named.append(f"{c.model} {c.dataset} {c.strategy} {c.metrics.n_valid} of "
                         f"{c.metrics.n_items} valid, {fmt(left)} and {fmt(uniform)}")
    more = len(named) - SHOWN_INVALID
    return "; ".join(named[:SHOWN_INVALID]) + (f"; and {more} more" if more > 0 else "")


# what alm-v did with candidates sharing the top score, under each verifier_ties
_TIES_TAKEN = {"first": "fell back to its likeliest beam (beam order, as bon picks)",
               "mean": "took the mean of the tied candidates (verifier_ties mean)"}


def _with_uncertainty(cell: CellRecord, metric: str) -> str:
    """``0.5183±0.051``: the cell's mean and half the width of its 95% CI (``–`` for none)."""
    estimate = cell.metrics.scores.get(metric)
    if estimate is None or math.isnan(estimate.mean):
        return "–"
    low, high = estimate.ci95
    half = (high - low) / 2
    return f"{estimate.mean:.4f}" + (f"±{half:.3f}" if math.isfinite(half) else "")


def conventions(cells: list[CellRecord], tables: dict[str, Table]) -> list[str]:
    """What a reader needs to compare these numbers with others, wrapped for a terminal, and
    where the rest is."""
    return wrapped(comparable_with(cells, tables) + " The paired means and every table: "
                   "tables.md, report.html.")


def comparable_with(cells: list[CellRecord], tables: dict[str, Table]) -> str:
    """What a reader needs to compare these numbers with others: the items, what the means and
    changes are, the tie rule, the prompts, the bins, α and any setting not the reference's."""
    _, item_rows = tables["items"]
    items = "; ".join(
        f"{row[0][0]}{'' if row[1][0] == '{}' else ' ' + row[1][0]} {row[2][0]} items"
        + ("" if not row[4][0] else " (the paper's N)" if row[5][0] == "same N"
           else f" (the paper's: {row[4][0]})")
        + _dropped(cells, row[0][0]) for row in item_rows)
    prompts = _one_or_mixed(f"{c.meta['prompts'].get('set')} v{c.meta['prompts'].get('version')}"
                            for c in cells if isinstance(c.meta.get("prompts"), dict)) or "none"
    bins = _one_or_mixed(str(c.metrics.bins.get("method", "width")) for c in cells)
    alpha = _one_or_mixed(str((c.meta.get("strategy_config") or {}).get("alpha"))
                          for c in cells if c.strategy == "w-bon")
    intervals = _one_or_mixed(c.metrics.interval for c in cells)
    text = (f"Items: {items}. JS (lower is better), BC, R² and acc (higher): each cell's mean over "
            f"its valid items{_FILLED if _filled(cells) else ''} ± half the width of its 95% CI "
            f"({_RULES.get(intervals, intervals)} "
            "intervals, docs/metrics.md); beside a strategy, its change against "
            f"its model's base in %{_FROM_ZERO if _from_zero(tables) else ''}, on the items "
            "valid in both (paired, their number in "
            "'paired'; + is better, * where the paired bootstrap 95% CI of the change excludes "
            + (f"0, on {MIN_PAIRED_ITEMS} paired items or more). " if intervals == "percentile" else
               f"0 and the sign-flip test agrees, over {MIN_PAIRED_ITEMS} or more items that "
               "changed). ")
            + _marked(tables, intervals)
            + "acc: argmax against the annotators' majority, ties to the first label. "
            f"Prompts: {prompts}; ambiguity bins: {bins}"
            + (f"; W-BoN's alpha: {alpha}" if alpha else "")
            + (f"; not the reference setup: {settings}" if (settings := _settings(cells)) else "")
            + (f"; answers by snapshot: {named}" if (named := answered_as(cells)) else "")
            + ".")
    return _printable(text)


_UNLESS = ", but for the answers of a cell run with invalid=uniform"
_FILLED = (" (with invalid uniform, an answer that gave no distribution as well, scored as a uniform "
           "guess; 'valid' then reads as 9+16/26, the model's own distributions plus the guesses)")


def _filled(cells: list[CellRecord]) -> bool:
    """Whether some cell scored its answers that gave no distribution as uniform guesses."""
    return any(c.metrics.guessed for c in cells)


def _marked(tables: dict[str, Table], intervals: str) -> str:
    """``Marked *: 9 of 21 changes; ...``: how many of the strategies table's changes are
    marked, and how many a run in which nothing changed would mark by chance, each change being
    tested alone at 5% (not corrected for the number made); "" where the table has none."""
    _, rows = tables.get("strategies", ([], []))
    suffixes = [suffix for row in rows for text, _ in row[3:3 + len(DISTRIBUTION)]
                if (suffix := change_suffix(text))]
    if not suffixes:
        return ""
    made = len(suffixes)
    marked = sum(suffix.endswith("*)") for suffix in suffixes)
    chance = 0.05 * made
    expected = f"about {chance:.0f}" if chance >= 0.5 else "fewer than one"
    return (f"Marked *: {marked} of {made} changes, each tested alone at 5% (not corrected for "
            f"the {made} made: if no strategy changed anything, {expected} would be marked by "
            f"chance{', more over few changed items' if 'percentile' in intervals else ''}). ")


_FROM_ZERO = " (against a base whose mean is 0, which has none, the difference: 'base 0, +0.3781')"


def _from_zero(tables: dict[str, Table]) -> bool:
    """Whether a change in the strategies table is a difference from a base whose mean is 0."""
    _, rows = tables.get("strategies", ([], []))
    return any(change_suffix(text).startswith(" (base 0, ")
               for row in rows for text, _ in row[3:3 + len(DISTRIBUTION)])


# how a cell's CIs were taken, by its records' interval (more than one: their names alone)
_RULES = {"expanded": "bootstrap, acc's Wilson's; expanded", "percentile": "bootstrap; percentile"}


def _settings(cells: list[CellRecord]) -> str:
    """The strategies' settings of the model cells that are not the reference setup's
    (``beams 3``; ``seed 0, 1`` where cells differ), the prompts and α said apart."""
    from harness.strategies._config import StrategyConfig

    configs: list[dict] = [c.meta["strategy_config"] for c in cells
                           if isinstance(c.meta.get("prompts"), dict)
                           and isinstance(c.meta.get("strategy_config"), dict)]
    changed = []
    for name, default in dataclasses.asdict(StrategyConfig()).items():
        values = _one_or_mixed(str(config[name]) for config in configs if name in config)
        if name not in ("prompts", "alpha") and values and values != str(default):
            changed.append(f"{name} {values}")
    return ", ".join(changed)


def _dropped(cells: list[CellRecord], dataset: str) -> str:
    """``, 2 problems dropped data: python -m harness.data check iemocap ROOT lists them`` where
    the loader dropped data for problems in the corpus's files, "" elsewhere."""
    metas = [c.meta.get("dataset") or {} for c in cells if c.dataset == dataset]
    errors = max((dropped_data(meta) for meta in metas), default=0)
    if not errors:
        return ""
    roots = sorted({str(meta.get("root")) for meta in metas if dropped_data(meta)})
    return (f", {dropped_text(errors)}: "
            + " and ".join(f"python -m harness.data check {shlex.quote(dataset)} {shlex.quote(root)}"
                           for root in roots) + " lists them")


def _one_or_mixed(values: Iterable[str]) -> str:
    found = sorted(set(values))
    return found[0] if len(found) == 1 else ", ".join(found) if found else ""


def aligned(table: list[list[str]]) -> list[str]:
    """Rows of text in columns, each as wide as its widest entry; a character that would not
    print (a terminal's escape sequence in a model's name, a line break) shown as ``?``."""
    table = [[_printable(text) for text in row] for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip()
            for row in table]


def _printable(text: str) -> str:
    """``text`` with each character that would not print (an escape sequence's, a line break)
    shown as ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
