"""A record on disk: ``<run>/cells/<cell>.json`` (the summary, the items' scores as columns,
the items) and ``<cell>.items.jsonl`` (the evidence), each written whole or not at all; and the
reading of both, the summary alone where the whole is not needed."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from harness import _json
from harness._atomic import write_whole
from harness._regular import open_regular, refused_kind
from harness.record.cell import CellRecord, ItemRecord
from harness.record.json_line import json_line, read_json_line
from harness.record.schema import SCHEMA_VERSION, RecordError, RecordSchemaError, evidence_problem
from harness.score_columns import ScoreColumns


def file_stem(name: str) -> str:
    """A cell id or model name as a file name (``openai-compatible:org/model`` has ':' and '/');
    a name too long for a file system (255 bytes with its extension) keeps its first 180 bytes
    (less a character they would cut) and a hash of the whole."""
    stem = name.replace(":", "_").replace("/", "_").replace("\\", "_").replace("\0", "_")
    if len(stem.encode()) <= 200:
        return stem
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{stem.encode()[:180].decode(errors='ignore')}-{digest}"


def write_record(record: CellRecord, run_dir: str | os.PathLike[str]) -> Path:
    """Write ``<run_dir>/cells/<cell>.json`` atomically, and its per-item evidence (when it has
    any) as ``<cell>.items.jsonl`` first; returns the record's path."""
    folder = Path(run_dir) / "cells"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_stem(record.cell)}.json"
    if record.evidence is not None:
        _write_items(record, items_path(path))
    return write_whole(path, record_parts(record))


ITEMS_MARK = '\n "items": ['  # where a record file's summary ends and its items begin


def record_parts(record: CellRecord) -> Iterator[str]:
    """The record's file, in pieces to write one after the other (a 100,000-item record is never
    one string): the summary indented, then the items' scores as columns on one line
    (:mod:`harness.score_columns`, which the report reads without the items), then the items,
    one compact line each (:func:`_item_text`: indenting them took 80 ms per 1,000)."""
    head = json.dumps(record.to_json(items=False), indent=1)
    yield f'{head[:-2]},\n "item_scores": {json.dumps(record.score_columns().to_json())},'
    yield ITEMS_MARK
    for n, item in enumerate(record.items):
        yield f'{"," if n else ""}\n  {_item_text(item)}'
    yield "\n ]\n}" if record.items else "]\n}"


def _item_text(item: ItemRecord) -> str:
    """An item's line: orjson's (1.4 µs a w-bon item, against 8.4 µs with the standard
    library's), unless one of its numbers is not finite (orjson would write null where the
    standard library writes NaN, and the record is read back by the standard library) or orjson
    refuses the item (a lone surrogate in a reason): the standard library writes those."""
    data = item.to_json()
    if item.all_finite():
        try:
            return orjson.dumps(data).decode()
        except TypeError:  # what orjson refuses (orjson.JSONEncodeError is one)
            pass
    return json.dumps(data)


def read_summary(path: str | os.PathLike[str]) -> CellRecord:
    """A record without its items (``items`` empty), with its items' scores as columns: the
    file is read up to where its items begin. A file written otherwise is read whole.

    Raises:
        RecordError, RecordSchemaError: as :func:`read_record`.
    """
    head = _summary_text(Path(path))
    if head is None:
        return read_record(path)
    try:
        data = _json.loads(head + "\n}")
        columns = ScoreColumns.from_json(data.pop("item_scores"))
    except (KeyError, TypeError, ValueError, AttributeError):  # binascii.Error is a ValueError
        return read_record(path)  # not our layout after all: the whole file decides
    try:
        record = CellRecord.from_json(data)
    except RecordError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    object.__setattr__(record, "columns", columns)
    return record


def _summary_text(path: Path, block: int = 1 << 20) -> str | None:
    """The file's text before :data:`ITEMS_MARK` (without the comma before it), or None when
    the mark is not there, the file does not end as :func:`record_parts` ends it (cut short), or
    the text before it is not UTF-8: it is read whole then, and judged whole. Only that text is
    decoded: a damaged byte among the item lines, which the report never reads, costs nothing."""
    mark = ITEMS_MARK.encode()
    head = bytearray()
    try:
        with open_regular(path) as raw:  # not a FIFO: read whole, it is refused there
            raw.seek(max(0, raw.seek(0, os.SEEK_END) - 3))
            if raw.read() != b"]\n}":
                return None
            raw.seek(0)
            while chunk := raw.read(block):
                seen = max(0, len(head) - len(mark) + 1)
                head += chunk
                at = head.find(mark, seen)
                if at >= 0:
                    return head[:at].decode("utf-8").rstrip().removesuffix(",")
    except (OSError, UnicodeDecodeError):
        return None
    return None


def items_path(record_path: str | os.PathLike[str]) -> Path:
    """Where the per-item evidence of the record at ``record_path`` lives."""
    return Path(record_path).with_suffix(".items.jsonl")


def _write_items(record: CellRecord, path: Path) -> None:
    """One JSON line per item after a header line, written whole or not at all."""
    assert record.evidence is not None
    header = {"schema_version": SCHEMA_VERSION, "cell": record.cell, **record.evidence.header}
    lines = (line + "\n" for line in record.evidence.json_lines())
    write_whole(path, itertools.chain([json_line(header).decode() + "\n"], lines))


def read_items(path: str | os.PathLike[str], bad_lines: list[str] | None = None
               ) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header of a cell's ``.items.jsonl`` and an iterator over its items, read one line at
    a time (a 10,000-item cell is never held whole). Given ``bad_lines``, a line that is not a
    JSON object, or whose lists are not lists (:func:`~harness.record.schema.evidence_problem`),
    is left out and named there (its file and number, and why) instead of raised.

    Raises:
        RecordError: the file cannot be read, is no regular file or its header is not one of
            this schema (at once); a line that is not an item (while iterating, unless
            ``bad_lines`` is given), naming the line.
    """
    _refuse_irregular(path)
    try:
        with open_regular(path) as f:  # the header line alone decoded (a text reader decodes
            header = _json.loads(f.readline().decode("utf-8"))  # 8 kB ahead: a later bad byte)
    except (OSError, ValueError) as exc:  # not UTF-8, not JSON, nested too deeply
        raise RecordError(f"{path}: not a readable items file: {exc}") from None
    if not isinstance(header, dict) or header.get("schema_version") != SCHEMA_VERSION:
        raise RecordError(f"{path}: not an items file of schema version {SCHEMA_VERSION}")

    def items() -> Iterator[dict[str, Any]]:
        with open_regular(path) as f:  # decoded line by line, so that an error names its line
            next(f)
            for n, raw in enumerate(f, start=2):
                try:
                    item = read_json_line(raw)
                    if not isinstance(item, dict):
                        raise ValueError(f"a JSON {type(item).__name__}, not an object")
                    if (problem := evidence_problem(item)) is not None:
                        raise ValueError(f"item {str(item.get('id'))[:80]!r}: {problem}")
                except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
                    if bad_lines is None:
                        raise RecordError(f"{path}, line {n}: {exc}") from None
                    bad_lines.append(f"{path}, line {n}: {str(exc)[:200]}")
                    continue
                yield item

    return header, items()


def read_record(path: str | os.PathLike[str]) -> CellRecord:
    """A record from its file.

    Raises:
        RecordSchemaError: it was written under another schema version.
        RecordError: it cannot be read, is no regular file (a FIFO is never opened), is not
            JSON (a file cut short) or not a cell record; the message names the file.
    """
    _refuse_irregular(path)
    try:
        with open_regular(path) as f:
            data = _json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as exc:  # not UTF-8, not JSON, nested too deeply
        raise RecordError(f"{path}: not a readable JSON file: {exc}") from None
    try:
        return CellRecord.from_json(data)
    except RecordSchemaError as exc:
        raise RecordSchemaError(f"{path}: {exc}") from None
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None


def _refuse_irregular(path: str | os.PathLike[str]) -> None:
    """A FIFO, a folder or a device where a record file should be is refused before it is
    opened: reading a FIFO would wait for a writer for ever."""
    why = refused_kind(path)
    if why is not None:
        raise RecordError(f"{path}: {why}")
