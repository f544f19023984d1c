"""``report.html``: one self-contained page for a run, readable from ``file://`` with no network.

Jinja2 renders the page from ``templates/report.html.j2``; Chart.js (vendored, ``vendor/``) draws
an item's distributions. The page holds the tables (with CIs and significance marks), the figures
(PNG, inline) and, per cell, its per-item evidence (``cells/<cell>.items.jsonl``) gzip-compressed
and base64-encoded in a script block that the page decompresses (``DecompressionStream``) only
when the cell is opened, so the first view does not wait for every cell's items. Model outputs
are data: the page puts them into the document as text, never as markup.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.metrics import MIN_PAIRED_ITEMS
from harness.record import CellRecord, RecordError, file_stem, items_path, read_items
from harness.record.json_line import json_line
from harness.report.legends import LEGENDS
from harness.report.terminal import comparable_with


def _vendor(name: str) -> str:
    return (resources.files("harness.report") / "vendor" / name).read_text()


def _cell_summary(index: int, cell: CellRecord) -> dict[str, Any]:
    m = cell.metrics
    return {"index": index, "cell": cell.cell, "model": cell.model, "dataset": cell.dataset,
            "strategy": cell.strategy, "labels": list(cell.labels), "n_items": m.n_items,
            "n_valid": m.n_valid, **{k: round(m.mean(k), 4) for k in ("js", "bc", "r2", "acc")
                                     if k in m.scores}}


def _items_blob(run_dir: Path, cell: CellRecord) -> tuple[str, dict[str, Any], list[str]]:
    """The cell's items as gzip+base64 JSON Lines (clip paths made relative to the report's
    folder where the clip is readable, else dropped), the items file's header, and its lines
    left out (a damaged line, such as a number out of JSON's range, 1e999, costs that item
    alone); empty when the cell has no readable items file."""
    path = items_path(run_dir / "cells" / f"{file_stem(cell.cell)}.json")
    if not path.is_file():
        return "", {}, []
    bad_lines: list[str] = []
    try:
        header, items = read_items(path, bad_lines)
        lines = [json_line(_relative_audio(item, run_dir)) for item in items]
    except RecordError as exc:  # no items file of this schema, or one that cannot be read
        return "", {}, [str(exc)]
    packed = gzip.compress(b"\n".join(lines), compresslevel=6, mtime=0)
    return base64.b64encode(packed).decode(), header, bad_lines


def _relative_audio(item: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The item with its clip as a URL relative to the report's folder, percent-encoded (a
    folder named ``take#2`` or ``100%`` would otherwise end the path at ``#`` or break it at
    ``%``); None where the clip is not readable."""
    audio = item.get("audio")
    if isinstance(audio, str) and audio and _readable_file(audio):
        item["audio"] = quote(Path(os.path.relpath(audio, run_dir)).as_posix())
    else:
        item["audio"] = None
    return item


def _readable_file(path: str) -> bool:
    """Whether ``path`` names a file this user can read; False, not an error, for a path no file
    can have (a NUL byte in a damaged items file dropped its whole cell's items from the page;
    a name too long for the file system)."""
    try:
        return os.access(path, os.R_OK) and Path(path).is_file()
    except (OSError, ValueError):
        return False


def render_html(run_dir: Path, cells: list[CellRecord], tables: Mapping[str, tuple[list[str], Any]],
                figures: Mapping[str, bytes], stopped: str = "") -> str:
    """The page's text; ``stopped``: what it says above its tables of a run that stopped early."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    summaries, blobs, templates = [], [], []
    for index, cell in enumerate(cells):
        blob, header, left_out = _items_blob(Path(run_dir), cell)
        summaries.append({**_cell_summary(index, cell), "has_items": bool(blob),
                          "items_left_out": [why[:300] for why in left_out[:3]],
                          "n_items_left_out": len(left_out)})
        blobs.append(blob)
        templates.append(header.get("prompt_templates", {}))
    return env.get_template("report.html.j2").render(
        run=Path(run_dir).name,
        tables=[(name, header, list(rows), LEGENDS.get(name, ""))
                for name, (header, rows) in tables.items()],
        figures=[(name, base64.b64encode(png).decode()) for name, png in figures.items()],
        cells_json=_script_json(summaries), templates_json=_script_json(templates),
        blobs=blobs, chart_js=_vendor("chart.umd.min.js"), min_paired=MIN_PAIRED_ITEMS,
        comparable=comparable_with(cells, dict(tables)) if cells else "", stopped=stopped)


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can close it early)."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")

