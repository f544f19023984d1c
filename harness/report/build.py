"""Rebuild a run's report from its per-cell JSON files: ``python -m harness.report <run-dir>``."""

from __future__ import annotations

import json
from pathlib import Path

from harness.grid import file_stem
from harness.report.tables import TABLES, csv_text, latex, markdown

TIMING_FIELDS = ("seconds", "gpu_seconds")


def load_cells(run_dir: Path) -> list[dict]:
    """Every finished cell of the run (files written by any worker, crashed ones included)."""
    cells = []
    for path in sorted((Path(run_dir) / "cells").glob("*.json")):
        try:
            cells.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # a file caught mid-write by a crash: its cell is simply not finished
    return cells


def summary_of(cell: dict) -> dict:
    """A cell without its per-item predictions (those stay in cells/<cell>.json)."""
    return {k: v for k, v in cell.items() if k != "items"}


def build_report(run_dir: Path) -> Path:
    """Write report.json, the tables (md, csv, tex) and the ambiguity figures; return report.json."""
    run_dir = Path(run_dir)
    cells = load_cells(run_dir)
    report = {"run": run_dir.name, "cells": [summary_of(c) for c in cells]}
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


def _figures(cells: list[dict], folder: Path) -> None:
    """Per model and dataset: the median of each metric per entropy bin, a line per strategy."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        if c["metrics"].get("bins", {}).get("js") is not None:
            groups.setdefault((c["model"], c["dataset"]), []).append(c)
    if not groups:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for (model, dataset), group in groups.items():
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), constrained_layout=True)
        for ax, metric in zip(axes, ("js", "bc", "r2")):
            for c in sorted(group, key=lambda c: c["strategy"]):
                bins = c["metrics"]["bins"]
                edges = bins["edges"]
                centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
                values = [float("nan") if v is None else v for v in bins[metric]]
                ax.plot(centres, values, marker="o", label=c["strategy"])
            ax.set_xlabel("annotator entropy (bits)")
            ax.set_title(f"median {metric.upper() if metric != 'r2' else 'R²'}")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{model} on {dataset}")
        fig.savefig(folder / f"{file_stem(model)}-{dataset}.png", dpi=110)
        plt.close(fig)
