"""A setting's choices side by side, from the numbers a record keeps for each (a setting that
changes no generation, so one run scores every choice on the same items): W-BoN's α, ALM-v's
tie rule; and each reading of a cell's invalid items."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from harness.metrics import MIN_PAIRED_ITEMS
from harness.record import CellRecord

Table = tuple[list[str], list[list[tuple[str, str]]]]
DISTRIBUTION = ("js", "bc", "r2")  # the metrics each choice is scored on
TITLES = {"js": "JS", "bc": "BC", "r2": "R²", "weight_max": "max weight"}


def alpha_table(cells: list[CellRecord]) -> Table:
    """W-BoN under each choice of alpha (raw, per-token mean, uniform), from each cell's own
    candidates: how much the weighting, not the beams, moves the result."""
    return _choices_table(cells, "alpha", ("raw", "mean", "uniform"),
                          lambda c: c.metrics.alpha_sensitivity, (*DISTRIBUTION, "weight_max"))


def ties_table(cells: list[CellRecord]) -> Table:
    """ALM-v under each tie rule (the first of the candidates sharing the verifier's top score,
    or their mean), from each cell's own candidates: how much the rule, not the verifier, moves
    the result."""
    return _choices_table(cells, "verifier_ties", ("first", "mean"),
                          lambda c: (c.metrics.verifier or {}).get("ties") or {})


def invalid_table(cells: list[CellRecord]) -> Table:
    """Each cell with invalid items under each reading of them: left out (the harness's: its
    means over the valid items, their CIs the cell's own where that is its reading) and scored
    as a uniform guess (over every item that did not fail, each mean's 95% CI beside it)."""
    header = ["Model", "Dataset", "Strategy", "valid"] + [
        f"{TITLES[m]} {reading}" for m in DISTRIBUTION for reading in ("left out", "uniform")]
    rows = []
    for c in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy)):
        if not c.metrics.invalid:
            continue
        left, uniform = (c.metrics.invalid.get(r) or {} for r in ("left_out", "uniform"))
        rows.append([(c.model, ""), (c.dataset, ""), (c.strategy, ""),
                     (valid_of(c), "")] + [
            (text, "") for m in DISTRIBUTION for text in (
                fmt(left.get(m)) + bounds(_own_ci(c, m)),
                fmt(uniform.get(m)) + bounds(uniform.get(f"{m}_ci")))])
    return header, rows


def valid_of(cell: CellRecord) -> str:
    """``18 of 26``: the items whose answer gave a distribution, of the cell's items, and
    ``, 7 as uniform guesses`` where the cell scored others so (``invalid="uniform"``)."""
    m = cell.metrics
    return f"{m.n_valid:,} of {m.n_items:,}" + (f", {m.guessed:,} as uniform guesses" if m.guessed else "")


def _own_ci(cell: CellRecord, metric: str) -> Any:
    """The cell's own CI of ``metric``, which is the left-out reading's unless the cell scored
    answers as uniform guesses (``invalid="uniform"``: then none is shown for it)."""
    if cell.metrics.guessed:
        return None
    estimate = cell.metrics.scores.get(metric)
    return None if estimate is None else list(estimate.ci95)


def bounds(interval: Any) -> str:
    """`` [0.4123, 0.4567]``, nothing where there is no interval."""
    return "" if not interval else f" [{fmt(interval[0])}, {fmt(interval[1])}]"


def _choices_table(cells: list[CellRecord], setting: str, choices: tuple[str, ...],
                   numbers: Callable[[CellRecord], Mapping[str, Mapping[str, Any]]],
                   shown: tuple[str, ...] = DISTRIBUTION) -> Table:
    """A row per cell that holds ``numbers`` for the setting's choices: the choice it ran
    under, then each number ``shown`` under each choice, each change from the first choice
    beside it where the record has its CI."""
    header = ["Model", "Dataset", f"{setting} used"] + [f"{TITLES[m]} {a}" for m in shown
                                                         for a in choices]
    rows = []
    for c in sorted(cells, key=lambda c: (c.model, c.dataset)):
        table = numbers(c)
        if not table:
            continue
        config = c.meta.get("strategy_config")
        used = str(config.get(setting, "") if isinstance(config, dict) else "")
        rows.append([(c.model, ""), (c.dataset, ""), (used, "")] + [
            (against(table, a, m, choices[0]), "") for m in shown for a in choices])
    return header, rows


def against(table: Mapping[str, Mapping[str, Any]], choice: str, metric: str,
            reference: str) -> str:
    """``0.4238 (+0.0006*)``: the mean under ``choice`` and its paired change from the
    ``reference`` choice, ``*`` where the change's 95% CI excludes zero over 6 items or more
    and, where the record has it (the expanded intervals), the sign-flip test agrees (p ≤ 5%);
    the mean alone for the reference, and in a record from before the intervals were kept."""
    row = table.get(choice, {})
    value, interval = row.get(metric), row.get(f"{metric}_change_ci")
    base = table.get(reference, {}).get(metric)
    if value is None or base is None or interval is None:
        return fmt(value)
    p = row.get(f"{metric}_change_p")
    significant = (row.get("n", 0) >= MIN_PAIRED_ITEMS and (interval[0] > 0 or interval[1] < 0)
                   and (p is None or p <= 0.05))
    return f"{fmt(value)} ({value - base:+.4f}{'*' if significant else ''})"


def fmt(value: Any) -> str:
    """A number as every table shows it (four decimals), ``–`` for none."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
