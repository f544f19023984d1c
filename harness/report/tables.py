"""The benchmark tables, in Markdown, CSV and LaTeX, from the cells' summaries.

- main: models × datasets, JS / BC / R² of the ``base`` strategy (best in bold, second underlined);
- strategies: every strategy with ``value (relative change vs base)``, e.g. ``0.3364 (+6.3*)``, on
  the items valid in both cells, ``*`` where the paired bootstrap CI of the change excludes zero
  and the sign-flip test agrees (over 6 or more paired items whose score changed);
- classification: accuracy, macro-F1 and UAR (unweighted average recall) of the majority (ties to
  the first label, every item), and the same with tied items left out, each with its 95% CI
  (accuracy's Wilson's under the expanded intervals, the rest the bootstrap's);
- compute: tokens, seconds, GPU-seconds and cost per item, to read the strategies at equal
  compute, and the share of each cell's model calls read from the cache (its seconds do not
  count those);
- items: per corpus and loader options, the items evaluated and what the loader left out, beside
  the paper's N;
- ambiguity: each cell's median JS, BC and R² at each ambiguity level, under its corpus's levels;
- alpha: W-BoN under each choice of alpha, from the same candidates;
- verifier: how a verifier's scores told the candidates apart (:mod:`harness.report.verifier`);
- ties: ALM-v under each tie rule, from the same candidates (:mod:`harness.report.choices`);
- invalid: each cell with invalid items, its means with them left out and with each scored as
  a uniform guess.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter

from harness.metrics import CLASSIFICATION, LOWER_IS_BETTER, level_name
from harness.record import CellRecord
from harness.report.choices import alpha_table, bounds, invalid_table, ties_table, valid_of
from harness.report.choices import fmt as _fmt
from harness.report.paired import paired_change, with_change
from harness.report.verifier import verifier_table

DISTRIBUTION = ("js", "bc", "r2")
TITLES = {"js": "JS", "jsd": "JSD", "bc": "BC", "r2": "R²", "acc": "Acc", "f1": "F1", "uar": "UAR",
          "acc_untied": "Acc (untied)", "f1_untied": "F1 (untied)", "uar_untied": "UAR (untied)"}


def _mean(cell: CellRecord, metric: str) -> float:
    return cell.metrics.mean(metric)


def _rank_marks(values: list[float], lower_is_better: bool) -> list[str]:
    """``best`` / ``second`` / ``""`` for each value (NaN never ranks)."""
    finite = sorted({v for v in values if not math.isnan(v)}, reverse=not lower_is_better)
    marks = []
    for v in values:
        if finite and v == finite[0]:
            marks.append("best")
        elif len(finite) > 1 and v == finite[1]:
            marks.append("second")
        else:
            marks.append("")
    return marks


def main_table(cells: list[CellRecord]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header and rows of (text, mark) for models × datasets at strategy ``base``: each cell's own
    mean with its bootstrap 95% CI, ``0.4373 [0.4130, 0.4602]``, over its valid items (how many,
    where not all: ``(valid 18 of 26)``). Where a corpus's cells were run
    on more than one item set (merged runs of other corpus options or ``--limit``), a cell off
    the commonest set says its own (``(on 18 items, options {"sessions": [1]})``) and is not
    ranked against the others."""
    base = [c for c in cells if c.strategy == "base"]
    datasets = paper_order({c.dataset for c in base})
    models = list(dict.fromkeys(c.model for c in base))
    index = {(c.model, c.dataset): c for c in base}
    header = ["Model"] + [f"{d} {TITLES[m]}" for d in datasets for m in DISTRIBUTION]
    chance = [_is_chance(mo) for mo in models]  # baselines are shown, not ranked
    columns = []
    for d in datasets:
        cells_here = [index.get((mo, d)) for mo in models]
        apart = _apart_from_commonest(cells_here)
        for m in DISTRIBUTION:
            values = [float("nan") if c is None else _mean(c, m) for c in cells_here]
            marks = _rank_marks([float("nan") if skip or note else v
                                 for v, skip, note in zip(values, chance, apart)], LOWER_IS_BETTER[m])
            texts = [_fmt(v) + _ci(c, m) + n + _partly_valid(c)
                     for v, c, n in zip(values, cells_here, apart)]
            columns.append((texts, marks))
    rows = [[(model, "")] + [(col[0][r], col[1][r]) for col in columns]
            for r, model in enumerate(models)]
    return header, rows


def _item_set(cell: CellRecord) -> tuple[str, int]:
    """The options a cell's corpus was loaded with and its number of items."""
    dataset = cell.meta.get("dataset")
    options = dataset.get("options") if isinstance(dataset, dict) else None
    return json.dumps(options or {}, sort_keys=True, default=str), cell.metrics.n_items


def _apart_from_commonest(cells: list[CellRecord | None]) -> list[str]:
    """For each cell of one corpus, "" or what sets it apart from the item set most of them
    share (the larger one on a tie): `` (on 18 items, options {...})``."""
    sets = [None if c is None else _item_set(c) for c in cells]
    counts = Counter(s for s in sets if s is not None)
    if len(counts) < 2:
        return [""] * len(cells)
    common = max(counts, key=lambda s: (counts[s], s[1]))
    return ["" if s is None or s == common else
            f" (on {s[1]:,} items" + (f", options {s[0]})" if s[0] != common[0] else ")")
            for s in sets]


def _partly_valid(cell: CellRecord | None) -> str:
    """`` (valid 18 of 26)`` where some items have no prediction: its mean is over the others
    (`` (valid 18 of 26, 7 as uniform guesses)``: and those, under ``invalid="uniform"``)."""
    if cell is None or cell.metrics.n_valid == cell.metrics.n_items:
        return ""
    return f" (valid {valid_of(cell)})"


def _ci(cell: CellRecord | None, metric: str) -> str:
    estimate = None if cell is None else cell.metrics.scores.get(metric)
    return "" if estimate is None else bounds(estimate.ci95)


PAPER_ORDER = ("iemocap", "msp_podcast", "crema_d")


def paper_order(datasets: set[str]) -> list[str]:
    """The paper's corpora in its order (IEMOCAP, MSP-Podcast, CREMA-D), then any others."""
    return [d for d in PAPER_ORDER if d in datasets] + sorted(datasets - set(PAPER_ORDER))


def _is_chance(model: str) -> bool:
    from harness.models.registry import model_entry

    try:
        return model_entry(model).kind == "chance"
    except ValueError:  # a model registered by a run's own conftest
        return False


def strategy_table(cells: list[CellRecord]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Every (model, dataset, strategy): each metric's mean over the items valid in both this
    cell and its ``base`` cell, and the relative change against ``base`` on those same items
    (``0.3364 (+6.3)``, marked ``*`` where the paired bootstrap 95% CI of the change excludes
    zero), with the number of items paired. A cell without a base (or without per-item scores)
    shows its own means."""
    base = {(c.model, c.dataset): c for c in cells if c.strategy == "base"}
    header = ["Model", "Dataset", "Strategy"] + [TITLES[m] for m in DISTRIBUTION] + ["paired"]
    rows = []
    for c in sorted(cells, key=lambda c: (c.model, c.dataset)):
        ref = base.get((c.model, c.dataset))
        row = [(c.model, ""), (c.dataset, ""), (c.strategy, "")]
        paired = ""
        for m in DISTRIBUTION:
            change = None if ref is None or c is ref else paired_change(ref, c, m, LOWER_IS_BETTER[m])
            if change is None:
                row.append((_fmt(_mean(c, m)), ""))
                continue
            row.append((with_change(change), ""))
            paired = str(change.n)
        rows.append(row + [(paired, "")])
    return header, rows


PAPER_ITEMS = {"iemocap": 4373, "msp_podcast": 12955, "crema_d": 7442}  # the paper's N per corpus


def items_table(cells: list[CellRecord]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Per corpus, loader options and number of items (a row per item set): the items a run
    evaluated (``10 of 26`` for a subsample of the corpus, as ``--limit`` draws), what the loader
    left out, and the paper's N, so that a reader sees whether the numbers are over the paper's
    item set."""
    header = ["Dataset", "options", "items", "left out by the loader", "paper's items", "comparable"]
    seen: dict[tuple[str, str, int, str], tuple[object, str]] = {}
    for c in cells:  # a row per item set: cells merged from runs of another --limit get their own
        dataset = c.meta.get("dataset") or {}
        options = json.dumps(dataset.get("options") or {}, sort_keys=True)
        n, drawn_from = int(dataset.get("n_items", c.metrics.n_items)), dataset.get("drawn_from")
        seen.setdefault((c.dataset, options, n, str(drawn_from)), (drawn_from, left_out(dataset)))
    rows = []
    for (name, options, n, _), (drawn_from, dropped) in sorted(seen.items()):
        paper = PAPER_ITEMS.get(name)
        verdict = ("" if paper is None else "same N" if n == paper
                   else f"no: {abs(n - paper):,} {'fewer' if n < paper else 'more'} items")
        items = f"{n:,}" if not isinstance(drawn_from, int) else f"{n:,} of {drawn_from:,}"
        rows.append([(name, ""), (options, ""), (items, ""), (dropped, ""),
                     ("" if paper is None else f"{paper:,}", ""), (verdict, "")])
    return header, rows


def left_out(dataset: dict) -> str:
    """``6 on purpose; 2 problems dropped data`` from a record's ``meta.dataset`` (what
    :meth:`~harness.data.Dataset.left_out` recorded); "" where it recorded nothing."""
    left = dataset.get("left_out")
    if not isinstance(left, dict):
        return ""
    skipped = left.get("skipped")
    on_purpose = sum(n for n in skipped.values() if _count(n)) if isinstance(skipped, dict) else 0
    errors = dropped_data(dataset)
    parts = [f"{on_purpose:,} on purpose"] if on_purpose else []
    if errors:
        parts.append(dropped_text(errors))
    return "; ".join(parts) or "none"


def dropped_data(dataset: dict) -> int:
    """How many problems in the corpus's files dropped data, from a record's ``meta.dataset``
    (0 where it recorded none, or nothing readable)."""
    left = dataset.get("left_out")
    problems = left.get("problems") if isinstance(left, dict) else None
    errors = problems.get("error") if isinstance(problems, dict) else None
    return errors if _count(errors) else 0  # type: ignore[return-value]


def dropped_text(errors: int) -> str:
    """``2 problems dropped data``."""
    return f"{errors:,} problem{'s' if errors != 1 else ''} dropped data"


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def classification_table(cells: list[CellRecord]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    shown = [m + suffix for suffix in ("", "_untied") for m in CLASSIFICATION]
    header = ["Model", "Dataset", "Strategy"] + [TITLES[m] for m in shown] + ["valid", "tied"]
    rows = [[(c.model, ""), (c.dataset, ""), (c.strategy, "")]
            + [(_fmt(_mean(c, m)) + _ci(c, m), "") for m in shown]
            + [(_fmt(c.metrics.valid), ""),
             ("" if c.metrics.n_tied is None else str(c.metrics.n_tied), "")]
            for c in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy))]
    return header, rows


def compute_table(cells: list[CellRecord]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Compute per item beside JS, so strategies can be compared at equal cost (see
    :data:`~harness.report.legends.LEGENDS` for what the seconds leave out)."""
    header = ["Model", "Dataset", "Strategy", "tokens/item", "s/item", "GPU-s/item", "USD/item",
              "from cache", "JS"]
    rows = []
    for c in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy)):
        n = max(1, c.metrics.n_items)
        cost = c.metrics.cost_usd
        rows.append([(c.model, ""), (c.dataset, ""), (c.strategy, ""),
                     (f"{c.metrics.tokens / n:.1f}", ""), (f"{c.seconds / n:.4f}", ""),
                     (f"{c.gpu_seconds / n:.4f}", ""),
                     ("" if cost is None else f"{cost / n:.5f}", ""), (_from_cache(c), ""),
                     (_fmt(_mean(c, "js")), "")])
    return header, rows


def _from_cache(cell: CellRecord) -> str:
    """The share of the cell's model calls read from the cache, ``–`` where the record does not
    say (no cache, a chance baseline, a record from before it was counted)."""
    calls = cell.meta.get("generations")
    if not isinstance(calls, dict) or not all(_count(calls.get(k)) for k in ("computed", "from_cache")):
        return "–"
    total = calls["computed"] + calls["from_cache"]
    return f"{calls['from_cache'] / total:.0%}" if total else "–"


def ambiguity_table(cells: list[CellRecord]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Each cell's median JS, BC and R² at each ambiguity level (the numbers the figures plot),
    under a row giving the levels of its corpus: each one's entropy range and item count."""
    levels = max((len(c.metrics.bins.get("counts", ())) for c in cells), default=0)
    header = ["Model", "Dataset", "Strategy", "Metric"] + [level_name(b) for b in range(levels)]
    groups: dict[tuple, list[CellRecord]] = {}  # cells on one item set share their levels
    order = {d: i for i, d in enumerate(paper_order({c.dataset for c in cells}))}
    for c in sorted(cells, key=lambda c: (order[c.dataset], c.model, c.strategy)):
        bins = c.metrics.bins
        if bins.get("counts"):
            key = (c.dataset, bins.get("method", ""), tuple(bins["edges"]), tuple(bins["counts"]))
            groups.setdefault(key, []).append(c)
    rows = []
    for (dataset, method, edges, counts), group in groups.items():
        ranges = [f"[{edges[b]:.2f}, {edges[b + 1]:.2f}{']' if b == len(counts) - 1 else ')'} "
                  f"n={n}" for b, n in enumerate(counts)]
        rows.append([("", ""), (dataset, ""), ("", ""), (f"entropy (bits), {method}", "")]
                    + [(r, "") for r in _padded(ranges, levels)])
        rows += [[(c.model, ""), (c.dataset, ""), (c.strategy, ""), (TITLES[m], "")]
                 + [(_median(v, ci), "") for v, ci in zip(
                     _padded(c.metrics.bins.get(m) or [], levels, None),
                     _padded(c.metrics.bins.get(f"{m}_ci") or [], levels, None))]
                 for c in group for m in DISTRIBUTION]
    return header, rows


def _median(value, interval) -> str:
    """``0.4123 [0.3800, 0.4500]``; the median alone where its level has too few items for a
    95% interval (or the record predates them)."""
    return _fmt(value) + ("" if value is None else bounds(interval))


def _padded(values: list, length: int, filler: object = "") -> list:
    return list(values) + [filler] * (length - len(values))


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "|": r"\textbar{}", "<": r"\textless{}",
                  ">": r"\textgreater{}", "\n": " ", "\r": " "}


def latex_escape(text: str) -> str:
    """Every LaTeX special character escaped (a model name is data, never markup; ``|<>``, which
    the default font encoding misprints, too), line breaks as spaces (a tabular refuses a blank line)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def markdown_escape(text: str) -> str:
    """A table cell's text with ``|`` (a column break), ``\\`` and line breaks made harmless."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown(header: list[str], rows) -> str:
    def cell(text, mark):
        text = markdown_escape(text)
        return f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text

    header = [markdown_escape(h) for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(t, m) for t, m in row) + " |" for row in rows]
    return "\n".join(lines)


def latex(header: list[str], rows) -> str:
    def cell(text, mark):
        text = latex_escape(text)
        return rf"\textbf{{{text}}}" if mark == "best" else (
            rf"\underline{{{text}}}" if mark == "second" else text)

    head = " & ".join(latex_escape(h).replace("²", r"$^2$") for h in header)
    body = "\n".join(" & ".join(cell(t, m) for t, m in row) + r" \\" for row in rows)
    return (f"\\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}\n\\toprule\n{head} \\\\\n"
            f"\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}")


def csv_text(header: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([t for t, _ in row] for row in rows)
    return buffer.getvalue()


TABLES = {"items": items_table, "main": main_table, "strategies": strategy_table,
          "classification": classification_table, "ambiguity": ambiguity_table,
          "compute": compute_table, "alpha": alpha_table, "verifier": verifier_table,
          "ties": ties_table, "invalid": invalid_table}
