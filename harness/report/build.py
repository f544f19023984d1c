"""Build a run's report from its cell records: ``python -m harness.report <run-dir>``.

The report only reads records (:mod:`harness.record`); it runs nothing.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._atomic import write_whole
from harness.metrics import level_name
from harness.record import CellRecord, RecordError, file_stem, read_summary
from harness.report.html import render_html
from harness.report.legends import LEGENDS
from harness.report.paper_tables import table2, table3
from harness.report.stopped import read_stopped, stopped_sentence, with_unrecorded
from harness.report.tables import TABLES, csv_text, latex, markdown
from harness.report.terminal import comparable_with, results_lines, wrapped


@dataclass(frozen=True)
class BuiltReport:
    """What building a report wrote, and the cell files it could not use (path, why)."""

    path: Path
    bad_cells: tuple[tuple[str, str], ...] = ()
    results: tuple[str, ...] = ()  # the results as text for a terminal (harness.report.terminal)
    notes: tuple[str, ...] = ()  # what a merge folded together (harness.report.merge)
    stopped: str = ""  # the run stopped before every selected cell ran (harness.report.stopped)


def load_cells(run_dir: Path) -> tuple[list[CellRecord], list[tuple[str, str]]]:
    """Every finished cell of the run (files written by any worker, crashed ones included), and
    each file in ``cells/`` that is not a readable record of this schema, with the reason."""
    cells, bad = [], []
    for path in sorted((Path(run_dir) / "cells").glob("*.json")):
        try:
            cells.append(read_summary(path))
        except RecordError as exc:
            bad.append((str(path), str(exc)))
    return cells, bad


def build_report(run_dir: Path, left_out: Sequence[tuple[str, str]] = ()) -> BuiltReport:
    """Write report.json, the tables (md, csv, tex), report.html and the ambiguity figures from the good cell
    files, each file replaced at once and only once everything is computed; the bad ones are
    named in report.json (``bad_cells``) and in the result, after ``left_out`` (cell files
    named elsewhere, with the reason: those a merge could not copy)."""
    run_dir = Path(run_dir)
    cells, bad = load_cells(run_dir)
    bad = [*left_out, *bad]
    stop = read_stopped(run_dir)  # a run that ended before every selected test ran
    stop = None if stop is None else with_unrecorded(stop, (c.cell for c in cells))
    stopped = stopped_sentence(stop, len(cells)) if stop is not None else ""
    report = {"run": run_dir.name, "cells": [c.to_json(items=False) for c in cells],
              "bad_cells": [{"path": path, "reason": reason} for path, reason in bad],
              **({"stopped": stop} if stop is not None else {})}
    files = {"report.json": json.dumps(report, indent=1, sort_keys=True)}
    parts, tables = [], {}
    for name, build in {**TABLES, "table2": table2, "table3": table3}.items():
        header, rows = tables[name] = build(cells)
        legend = "\n".join(wrapped(LEGENDS[name])) + "\n\n" if name in LEGENDS else ""
        parts.append(f"## {name}\n\n{legend}{markdown(header, rows)}\n")
        files[f"{name}.csv"] = csv_text(header, rows)
        files[f"{name}.tex"] = latex(header, rows) + "\n"
    # what the tables' numbers are comparable with, as the terminal says it, above them
    said = "\n".join(wrapped(comparable_with(cells, tables))) + "\n\n" if cells else ""
    warned = "\n".join(wrapped(f"**{stopped}**")) + "\n\n" if stopped else ""
    files["tables.md"] = warned + said + "\n".join(parts)
    figures = _figures(cells)
    files["report.html"] = render_html(run_dir, cells, tables, figures, stopped)
    for name, text in files.items():
        write_whole(run_dir / name, text)
    if figures:
        (run_dir / "figures").mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        write_whole(run_dir / "figures" / name, png)
    return BuiltReport(run_dir / "report.json", tuple(bad), tuple(results_lines(cells, tables)),
                       stopped=stopped)


def _figures(cells: list[CellRecord]) -> dict[str, bytes]:
    """Per model and dataset, a PNG shaped like the paper's Fig. 3: JS, BC and R² panels, the
    median per ambiguity level, a line per strategy, each level's number and items under its tick."""
    groups: dict[tuple[str, str], list[CellRecord]] = {}
    for c in cells:
        if c.metrics.bins.get("js") is not None:
            groups.setdefault((c.model, c.dataset), []).append(c)
    if not groups:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    # one figure drawn again for each group, laid out by hand: constrained layout took 40% of
    # the time, and 33 fresh figures most of the rest
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.24, top=0.84, wspace=0.22)
    for (model, dataset), group in groups.items():
        for ax, metric in zip(axes, ("js", "bc", "r2")):
            ax.clear()
            _panel(ax, group, metric)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{model} on {dataset}: the median per ambiguity level, bars its 95% CI "
                     "(levels of 6 items or more)", fontsize=10)
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=110, format="png", pil_kwargs={"compress_level": 1})
        out[f"{file_stem(model)}-{dataset}.png"] = buffer.getvalue()
    plt.close(fig)
    return out


def _drawable(interval: list | None) -> bool:
    """An interval with two finite ends, the low one first (a record may hold a null end)."""
    return (interval is not None and all(isinstance(end, (int, float)) and math.isfinite(end)
                                         for end in interval) and interval[0] <= interval[1])


def _panel(ax, group: list[CellRecord], metric: str) -> None:
    """One metric's medians per ambiguity level, a line per strategy, each median's 95% CI as
    a bar where its record holds one; the strategies side by side within a level."""
    ordered = sorted(group, key=lambda c: c.strategy)
    for k, c in enumerate(ordered):
        bins = c.metrics.bins
        edges = bins["edges"]
        step = (edges[-1] - edges[0]) / max(1, len(edges) - 1) or 1.0
        shift = (k - (len(ordered) - 1) / 2) * 0.5 * step / max(1, len(ordered))
        centres = [(a + b) / 2 + shift for a, b in zip(edges[:-1], edges[1:])]
        values = [float("nan") if v is None else v for v in bins[metric]]
        [line] = ax.plot(centres, values, marker="o", markersize=4, label=c.strategy)
        shown = [(x, ci) for x, v, ci in zip(centres, values, bins.get(f"{metric}_ci") or ())
                 if v == v and _drawable(ci)]
        if shown:  # each bar from its interval's ends: a percentile interval need not hold the
            xs, cis = zip(*shown)  # median, and drawn as errors around it one that did not crashed
            ax.errorbar(xs, [(lo + hi) / 2 for lo, hi in cis], yerr=[(hi - lo) / 2 for lo, hi in cis],
                        fmt="none", ecolor=line.get_color(), alpha=0.6, capsize=2, linewidth=1)
    edges, counts = group[0].metrics.bins["edges"], group[0].metrics.bins["counts"]
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    ax.set_xticks(centres, [f"{c:.2f}\n{level_name(b)}\nn={n}"
                            for b, (c, n) in enumerate(zip(centres, counts))], fontsize=7)
    ax.set_xlabel("annotator entropy (bits), level, items")
    ax.set_title(f"median {metric.upper() if metric != 'r2' else 'R²'}")
