"""One report from several run folders: ``python -m harness.report merge RUN... --out DIR``.

Shards of a grid run on several machines each write a run folder. A cell found in more than one
(a shard run again after a crash, selections that overlap) is taken once where its results are
the same, whatever the time, machine, commit or package versions it ran with, and refused,
naming both files, where they differ: the merged report never picks one result over another.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from harness import _json
from harness._atomic import write_whole
from harness._regular import read_regular, refused_kind
from harness.record import items_path
from harness.report.build import BuiltReport, build_report
from harness.report.stopped import STOPPED_FILE, merged_stops

# what says how, where and when a cell ran rather than what it found: its timings; under
# "meta", the machine, the time it finished, the commit and packages, the gate's verdict against
# that run's baseline, the model calls computed and read from the cache, the model's device, the
# corpus's folder and the plan's seconds
RUN_FIELDS = ("seconds", "gpu_seconds")
RUN_META = ("host", "finished", "git_commit", "versions", "regression", "generations")
RUN_META_PARTS = (("model", "device"), ("dataset", "root"), ("plan", "seconds"))


def merge_runs(target: Path, runs: list[Path]) -> BuiltReport:
    """Copy the runs' cell records (each with its items file) into ``target/cells`` and build
    the report there, the same as one run over all the cells would give.

    Raises:
        ValueError: A run folder without ``cells/``, or a cell in two runs with different
            results or that cannot be read (both files named); nothing is written then.
    """
    target = Path(target)
    chosen: dict[str, Path] = {}
    notes = []
    for run in map(Path, runs):
        if not (run / "cells").is_dir():
            raise ValueError(f"{run}: not a run folder (it has no cells/)")
        for record in sorted((run / "cells").glob("*.json")):
            kept = chosen.setdefault(record.name, record)
            if kept is record:
                continue
            try:
                same = same_results(kept, record)
            except OSError as exc:  # a FIFO among the cells is refused, never opened
                raise ValueError(f"cell {record.stem} cannot be compared across runs ({kept}, "
                                 f"{record}): {exc.strerror or exc}") from None
            if not same:
                raise ValueError(f"cell {record.stem} is in two runs with different results: "
                                 f"{kept} and {record}")
            notes.append(f"cell {record.stem} is in {kept.parent.parent} and {run} with the same "
                         f"results: the record of {kept.parent.parent} is kept")
    (target / "cells").mkdir(parents=True, exist_ok=True)
    left_out = []
    for record in chosen.values():  # a record and its items from the same run
        why = refused_kind(record)
        if why is not None:  # a FIFO cannot be copied: named as a bad cell, as a report names it
            left_out.append((str(record), f"{record}: {why}"))
            continue
        for path in (record, items_path(record)):
            if path.is_file():
                write_whole(target / "cells" / path.name, read_regular(path))
    _carry_stops(target, runs)
    return dataclasses.replace(build_report(target, left_out), notes=tuple(notes))


def _carry_stops(target: Path, runs: list[Path]) -> None:
    """A run among them that stopped early is said in the merged report too."""
    stop = merged_stops(runs)
    if stop is None:
        (target / STOPPED_FILE).unlink(missing_ok=True)
    else:
        write_whole(target / STOPPED_FILE, json.dumps(stop, sort_keys=True))


def same_results(a: Path, b: Path) -> bool:
    """Whether two files of one cell hold the same results: equal items files (or none) and
    records equal but for :data:`RUN_FIELDS`, :data:`RUN_META` and :data:`RUN_META_PARTS`."""
    if _bytes_or_none(items_path(a)) != _bytes_or_none(items_path(b)):
        return False
    first, second = read_regular(a), read_regular(b)
    if first == second:
        return True
    results = _results(first)
    return results is not None and results == _results(second)


def _bytes_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _results(data: bytes) -> str | None:
    """The record without how, where and when it ran, as canonical text (a NaN equals itself
    there); None for a file that is not a JSON record."""
    try:
        record: Any = _json.loads(data)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    record = {k: v for k, v in record.items() if k not in RUN_FIELDS}
    meta = record.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in RUN_META}
        for part, field in RUN_META_PARTS:
            if isinstance(meta.get(part), dict):
                meta[part] = {k: v for k, v in meta[part].items() if k != field}
        record["meta"] = meta
    return json.dumps(record, sort_keys=True)
