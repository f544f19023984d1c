"""Two runs side by side: ``python -m harness.report compare RUN_A RUN_B``; or two models:
``compare RUN RUN --models MODEL_A MODEL_B`` pairs each cell of A with B's on the same corpus and
strategy (a fine-tune against its original, in one run or two).

Either side may be a run folder (its ``cells/`` records) or a baselines folder (``evals/baselines``).
For each cell present in both, each gated metric's change from A to B on the items scored in both,
with a paired-bootstrap 95% CI (the regression gate's test, :mod:`harness.runner.gating`). Printed
as Markdown; the exit code is 1 when any cell is significantly worse in B, or has fewer than two
items scored in both (a run whose items all failed is not "not worse"), so it works as a CI step;
2 when the two share no cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from harness.record import RecordError, input_changes, inputs_of, read_summary
from harness.report.stopped import read_stopped
from harness.report.tables import markdown_escape
from harness.resampling import INTERVAL_NAMES
from harness.runner.baseline_file import BaselineError, read_baseline
from harness.runner.gating import (
    GATE_ALPHA,
    GATED,
    MetricChange,
    by_chance,
    items_needed,
    paired_changes,
    percent,
)
from harness.score_columns import ScoreColumns

Scores = dict[str, dict[str, float]]  # item id -> metric -> value


class CompareError(ValueError):
    """A side that is neither a run folder nor a baselines folder (what it is, named)."""


class Side(NamedTuple):
    """One side's cell: each scored item's scores, every item it holds (scored or not), and what
    produced it (:func:`~harness.record.inputs_of`; empty where not recorded)."""

    scores: Scores
    held: frozenset[str]
    inputs: Mapping[str, Any]


class Comparison(NamedTuple):
    """Per cell in both runs, its metrics' changes (see :func:`compare`), and what B was given
    unlike A (cells whose inputs are the same, or unknown on a side, left out)."""

    changes: dict[str, list[MetricChange] | None]
    other_inputs: dict[str, list[str]]
    alpha: float = GATE_ALPHA  # each cell's metrics held together at 1 - alpha
    interval: str = "expanded"  # how each CI's level was taken (harness.resampling.interval_level)


def item_scores_of(folder: Path) -> dict[str, Side]:
    """Per cell, each valid item's scores and the items held, from a run's records or a
    baselines folder."""
    folder = Path(folder)
    if (folder / "cells").is_dir():
        out = {}
        for path in sorted((folder / "cells").glob("*.json")):
            try:
                record = read_summary(path)  # the scores' columns, not the item lines
            except RecordError:
                continue  # the run's own report names it
            columns = record.score_columns()
            out[record.cell] = Side(_by_item(columns), frozenset(columns.ids), inputs_of(record))
        return out
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise CompareError(f"{folder}: neither a run folder (no cells/) nor a baselines folder "
                           "(no *.json)")
    out = {}
    for path in files:
        try:
            baseline = read_baseline(path)
        except BaselineError as exc:
            raise CompareError(str(exc)) from None
        out[baseline.cell] = Side(baseline.scores, frozenset(baseline.probs), baseline.inputs)
    return out


def _by_item(columns: ScoreColumns) -> Scores:
    """Each scored item's scores by id (an item with no score is left out, as in the record)."""
    values = {m: column.tolist() for m, column in columns.values.items()}
    out: Scores = {}
    for n, item in enumerate(columns.ids):
        scores = {m: column[n] for m, column in values.items() if column[n] == column[n]}
        if scores:
            out[item] = scores
    return out


def compare(a: Path, b: Path, n_resamples: int = 1000, seed: int = 0,
            models: tuple[str, str] | None = None, alpha: float = GATE_ALPHA,
            interval: str = "expanded") -> Comparison:
    """Each cell in both: its metrics' paired changes from ``a`` to ``b``; an empty list where
    the two hold fewer than two items in common (another item set: nothing to pair), None where
    they hold two or more of A's scored items but B scored fewer than two of them (B's items
    failed: not compared, which fails a comparison). And each such cell's inputs that differ.
    With ``models``, A's cells of the first model against B's of the second, keyed by corpus
    and strategy (``iemocap-base``). ``interval``: how each CI's level is taken
    (:func:`harness.resampling.interval_level`)."""
    first, second = item_scores_of(a), item_scores_of(b)
    if models is not None:
        first, second = _of_model(first, models[0], a), _of_model(second, models[1], b)
    if not set(first) & set(second):
        raise CompareError(f"no cell is in both {a} ({_few(first)}) and {b} ({_few(second)}): "
                           "nothing to compare")
    out: dict[str, list[MetricChange] | None] = {}
    other_inputs: dict[str, list[str]] = {}
    for cell in sorted(set(first) & set(second)):
        rows = paired_changes(first[cell].scores, second[cell].scores, names=GATED,
                              n_resamples=n_resamples, seed=seed, alpha=alpha, interval=interval)
        held = sum(1 for i in first[cell].scores if i in second[cell].held)
        out[cell] = None if not rows and held >= 2 else rows
        a_inputs, b_inputs = first[cell].inputs, second[cell].inputs
        if a_inputs and b_inputs and (found := input_changes(a_inputs, b_inputs)):
            other_inputs[cell] = found
    return Comparison(out, other_inputs, alpha, interval)


def _of_model(cells: dict[str, Side], model: str, folder: Path) -> dict[str, Side]:
    """The cells of ``model`` (by the model their inputs name, where recorded), keyed by what
    follows its name in theirs."""
    found = {cell[len(model) + 1:]: side for cell, side in cells.items()
             if cell.startswith(f"{model}-") and side.inputs.get("model", model) == model}
    if not found:
        raise CompareError(f"{folder} holds no cell of the model {model!r} ({_few(cells)})")
    return found


def _few(cells: dict[str, Side]) -> str:
    names = sorted(cells)
    return (", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            if names else "no cell")


def markdown(a: Path, b: Path, comparison: Comparison, models: tuple[str, str] | None = None
             ) -> str:
    """The comparison as a Markdown table, with what it covers above it and, below it, the
    cells whose inputs differ (each change there may be what was changed on purpose)."""
    changes = comparison.changes
    title = f"# {a} ({models[0]}) -> {b} ({models[1]})" if models else f"# {a} -> {b}"
    one = len(changes) == 1
    what = (f"corpus-strategy cell{'' if one else 's'} of both models" if models else
            f"cell{'' if one else 's'} in both")
    levels = sorted({c.confidence for rows in changes.values() for c in rows or ()})
    level = percent(levels[0]) if len(levels) == 1 else "per cell"
    lines = [title, "",
             f"{len(changes)} {what}; per metric, the mean over the items scored in both "
             "(paired), B − A with its paired-bootstrap CI; worse: the CI lies on the worse "
             "side (JS/JSD up; BC, R², accuracy down), and under the expanded intervals the "
             "paired sign-flip test agrees over "
             f"{items_needed(levels[0]) if len(levels) == 1 else 'enough'} or more items that "
             "changed ('items': paired, changed where fewer; unchanged: no item's score "
             "moved). Each cell's metrics' CIs hold together "
             f"at {percent(1 - comparison.alpha)} (Bonferroni: {level} each), so that a cell "
             f"that changed nothing systematically is called worse at most {percent(comparison.alpha)} "
             "of the time; over many cells some will be by chance (--gate-alpha). Intervals: "
             f"{INTERVAL_NAMES[comparison.interval]} (--interval).", "",
             f"| cell | metric | A | B | B − A | {level} CI | items | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for cell, rows in changes.items():
        name = markdown_escape(cell)  # a model's name with '|' in it would split its row
        if rows is None:
            lines.append(f"| {name} | – | | | | | fewer than 2 | **not compared** |")
        for c in rows or ():
            mark = ("unchanged" if c.verdict == "same" and c.items_changed == 0 else
                    {"worse": "**worse**", "better": "better", "same": "not significant"}[c.verdict])
            lines.append(f"| {name} | {c.metric} | {c.before:.4f} | {c.after:.4f} | "
                         f"{c.after - c.before:+.4f} | [{c.low:+.4f}, {c.high:+.4f}] | {_items(c)} | "
                         f"{mark} |")
    worse = sorted(cell for cell, rows in changes.items()
                   if any(c.verdict == "worse" for c in rows or ()))
    unjudged = sorted(cell for cell, rows in changes.items() if rows is None)
    lines += ["", (f"significantly worse: {', '.join(worse)}" if worse else
                   "no cell is significantly worse") + _by_chance(len(worse), len(changes),
                                                                   comparison.alpha)]
    if unjudged:
        lines.append(f"not compared, B scored fewer than 2 of the items A scored and B holds: "
                     f"{', '.join(unjudged)}")
    if comparison.other_inputs:
        lines += ["", "B's inputs unlike A's (the model revision included):"]
        lines += [f"- {cell}: {', '.join(found)}" for cell, found in comparison.other_inputs.items()]
    return "\n".join(lines + _stops(a, b)) + "\n"


def _stops(a: Path, b: Path) -> list[str]:
    """What to say of A or B where its run stopped before every selected cell ran."""
    lines = []
    for side, folder in (("A", a), ("B", b)):
        stop = read_stopped(folder)
        if stop is not None:
            said = "had not ended" if stop.get("running") else "stopped before every selected cell ran"
            lines += ["", f"{side} {said} ({stop['reason']}): the cells it did not reach are in "
                          "neither the table nor the count"]
    return lines


def _by_chance(worse: int, cells: int, alpha: float) -> str:
    """`` (2 of 40 cells; were nothing changed, ...)`` (:func:`~harness.runner.gating.by_chance`),
    or "" where chance would call fewer than one cell in two comparisons worse."""
    note = by_chance(cells, alpha)
    return f" ({worse} of {cells} cells; {note})" if note else ""


def _items(change: MetricChange) -> str:
    """``40``, or ``40 (5 changed)`` where not every paired item's score changed."""
    moved = change.items_changed
    return str(change.n) if moved == change.n else f"{change.n} ({moved} changed)"
