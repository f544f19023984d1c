"""A run's cell files: the record and its items file written whole, read back, and refused with
the file (and line) named when damaged."""

import json
import os
import re

import pytest

from harness.record import (
    SCHEMA_VERSION,
    RecordError,
    RecordSchemaError,
    items_path,
    read_items,
    read_record,
    read_summary,
    write_record,
)
from harness.runner.evaluate import evaluate


@pytest.fixture(scope="module")
def record():
    return evaluate("uniform", "crema_d", "base", n_resamples=10)


def test_a_record_and_its_items_are_written_into_a_folder_made_for_them(tmp_path, record):
    path = write_record(record, tmp_path / "a" / "run")
    assert path == tmp_path / "a" / "run" / "cells" / "uniform-crema_d-base.json"
    header, items = read_items(items_path(path))
    assert (header["schema_version"], header["cell"]) == (SCHEMA_VERSION, record.cell)
    assert [item["id"] for item in items] == [row.id for row in record.items]
    assert read_record(path) == record


def test_an_items_file_of_another_kind_is_refused_at_once_and_a_bad_line_by_its_number(
        tmp_path, record):
    path = items_path(write_record(record, tmp_path))
    lines = path.read_bytes().splitlines(keepends=True)
    for header, says in ((b"[1]\n", "not an items file of schema version"),
                         (b'{"schema_version": 0}\n', "not an items file of schema version"),
                         (b"{\n", "not a readable items file")):
        path.write_bytes(header + b"".join(lines[1:]))
        with pytest.raises(RecordError, match=f"^{path}: {says}"):
            read_items(path)
    path.write_bytes(b"".join(lines[:3] + [b"[1, 2]\n"] + lines[4:]))
    header, items = read_items(path)
    assert next(items)["id"] == json.loads(lines[1])["id"]  # the header is not an item
    with pytest.raises(RecordError, match=f"^{path}, line 4: a JSON list, not an object$"):
        list(items)
    bad: list[str] = []
    kept = list(read_items(path, bad)[1])
    assert len(kept) == len(lines) - 2 and bad == [f"{path}, line 4: a JSON list, not an object"]


def test_a_record_of_another_schema_version_is_refused_naming_its_file(tmp_path, record):
    path = write_record(record, tmp_path)
    path.write_text(path.read_text().replace(f'"schema_version": {SCHEMA_VERSION}',
                                             f'"schema_version": {SCHEMA_VERSION + 1}', 1))
    for read in (read_record, read_summary):
        with pytest.raises(RecordSchemaError, match=f"^{path}: cell record .* has schema version"):
            read(path)


@pytest.mark.parametrize("read", [read_record, read_summary, read_items])
def test_a_fifo_where_a_cell_file_should_be_is_refused_without_opening_it(tmp_path, read):
    fifo = tmp_path / "cell.json"
    os.mkfifo(fifo)  # opening it to read would wait for a writer for ever
    with pytest.raises(RecordError, match=f"^{fifo}: is a FIFO, not a regular file$"):
        read(fifo)


def test_a_damaged_byte_among_the_item_lines_costs_the_summary_nothing(tmp_path, record):
    """The report reads a record's summary alone; a byte that is not UTF-8 among its item lines
    (a disk's flipped bit) made the whole file unreadable, and the cell a bad one."""
    path = write_record(record, tmp_path)
    data = path.read_bytes()
    at = data.index(b'"items": [') + 200
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])
    assert read_summary(path) == read_summary(write_record(record, tmp_path / "again"))
    with pytest.raises(RecordError, match=f"^{path}: not a readable JSON file: 'utf-8' codec"):
        read_record(path)
    path.write_bytes(data[:10] + b"\xff" + data[11:])  # in the summary: judged whole, refused
    with pytest.raises(RecordError, match=f"^{path}: not a readable JSON file"):
        read_summary(path)


def test_an_evidence_line_whose_lists_are_not_lists_is_no_item(tmp_path, record):
    """Each one crashed the report page's item list or item view (the fields it iterates),
    found by setting every field of an item's line to each odd value in turn."""
    path = items_path(write_record(record, tmp_path))
    lines = path.read_text().splitlines()
    good = json.loads(lines[1])
    odd = [({"probs": {}}, "'probs' is not a list of numbers"),
           ({"human": "x"}, "'human' is not a list of numbers"),
           ({"votes": [1, "2"]}, "'votes' is not a list of numbers"),
           ({"notes": 7}, "'notes' is not a list"),
           ({"candidates": {}}, "'candidates' is not a list of objects"),
           ({"candidates": [None]}, "'candidates' is not a list of objects"),
           ({"candidates": [{"label_logprobs": "x"}]}, "each one's 'label_logprobs' a list")]
    for change, says in odd:
        path.write_text("\n".join([lines[0], json.dumps({**good, **change})] + lines[2:]) + "\n")
        with pytest.raises(RecordError, match=f"^{path}, line 2: item '{good['id']}': .*{re.escape(says)}"):
            list(read_items(path)[1])
        bad: list[str] = []
        assert len(list(read_items(path, bad)[1])) == len(lines) - 2 and len(bad) == 1
    fine = {"probs": None, "human": [0.5, None], "notes": None, "candidates": [
        {"label_logprobs": [None, -1.0]}, {"label_logprobs": None, "text": 3}]}
    path.write_text("\n".join([lines[0], json.dumps({**good, **fine})] + lines[2:]) + "\n")
    assert len(list(read_items(path)[1])) == len(lines) - 1
