"""Build a run's report from its cell records: ``python -m harness.report <run-dir>``.

The report only reads records (:mod:`harness.record`); it runs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.record import CellRecord, file_stem, read_record
from harness.report.tables import TABLES, csv_text, latex, markdown

TIMING_FIELDS = ("seconds", "gpu_seconds")


def load_cells(run_dir: Path) -> list[CellRecord]:
    """Every finished cell of the run (files written by any worker, crashed ones included).

    Raises:
        RecordSchemaError: a record was written under another schema version.
    """
    cells = []
    for path in sorted((Path(run_dir) / "cells").glob("*.json")):
        try:
            cells.append(read_record(path))
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            continue  # a file caught mid-write by a crash: its cell is simply not finished
    return cells


def build_report(run_dir: Path) -> Path:
    """Write report.json, the tables (md, csv, tex) and the ambiguity figures; return report.json."""
    run_dir = Path(run_dir)
    cells = load_cells(run_dir)
    report = {"run": run_dir.name, "cells": [c.to_json(items=False) for c in cells]}
    path = run_dir / "report.json"
    path.write_text(json.dumps(report, indent=1, sort_keys=True))
    parts = []
    for name, build in TABLES.items():
        header, rows = build(cells)
        parts.append(f"## {name}\n\n{markdown(header, rows)}\n")
        (run_dir / f"{name}.csv").write_text(csv_text(header, rows))
        (run_dir / f"{name}.tex").write_text(latex(header, rows) + "\n")
    (run_dir / "tables.md").write_text("\n".join(parts))
    _figures(cells, run_dir / "figures")
    return path


def _figures(cells: list[CellRecord], folder: Path) -> None:
    """Per model and dataset: the median of each metric per entropy bin, a line per strategy."""
    groups: dict[tuple[str, str], list[CellRecord]] = {}
    for c in cells:
        if c.metrics.bins.get("js") is not None:
            groups.setdefault((c.model, c.dataset), []).append(c)
    if not groups:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for (model, dataset), group in groups.items():
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), constrained_layout=True)
        for ax, metric in zip(axes, ("js", "bc", "r2")):
            for c in sorted(group, key=lambda c: c.strategy):
                bins = c.metrics.bins
                edges = bins["edges"]
                centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
                values = [float("nan") if v is None else v for v in bins[metric]]
                ax.plot(centres, values, marker="o", label=c.strategy)
            ax.set_xlabel("annotator entropy (bits)")
            ax.set_title(f"median {metric.upper() if metric != 'r2' else 'R²'}")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{model} on {dataset}")
        fig.savefig(folder / f"{file_stem(model)}-{dataset}.png", dpi=110)
        plt.close(fig)
