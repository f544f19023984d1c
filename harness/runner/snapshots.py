"""Cell snapshots that mean "same inputs, same outputs".

A cell's snapshot (its metrics rounded to four decimals and its counts) is filed under a key made
of what determines its output: the model's revision and dtype, the verifier's, the dataset's
manifest (which items, their votes, their audio) and corpus options, the strategy and its
configuration, the decoding, the prompt set's templates and the seed. ``--limit``, a corpus option
or another prompt set therefore look up another snapshot, and where none was recorded the cell
says so ("no snapshot for this configuration") instead of failing. A new model revision has no
snapshot either, so the paired-bootstrap gate alone judges a model update.

The snapshots live in one amber file per cell (``<tests>/snapshots/<module>/<cell>.ambr``), read
and written by syrupy. They belong to the harness, not to syrupy's "unused snapshot" bookkeeping:
a selection (``-k``, ``--models``, ``--collect-only``) never makes the others unused, and
``--snapshot-update`` writes only the selected cells' entries (removing only their entries of
other model revisions).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from syrupy.data import SnapshotCollection, SnapshotCollections
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.utils import cleanup_snapshot_write_sidecars

from harness import _json
from harness._regular import read_regular
from harness.record import SCORES, CellMetrics, CellRecord, file_stem, inputs_of

NONE = "no snapshot for this configuration"
PREDATES = "matched; the snapshot predates "  # then the metrics it lacks
# metrics added after snapshots were first recorded: one recorded before holds none of them
ADDED_LATER = ("uar", "uar_untied")


def _predated(old: Any, new: Mapping[str, Any]) -> list[str]:
    """The metrics of :data:`ADDED_LATER` the cell has that a snapshot recorded before them
    lacks: compared without them, so that an upgrade adding a metric fails no cell. (A snapshot
    holding any of them is of this harness: a metric it lacks was not finite then, and is
    compared.)"""
    before = _metrics_in(old)
    if any(name in before for name in ADDED_LATER):
        return []
    return [name for name in ADDED_LATER if name in new["metrics"]]


def rounded(metrics: CellMetrics) -> dict[str, Any]:
    """What a snapshot keeps: each mean to 4 decimals, and the counts."""
    out: dict[str, Any] = {name: round(metrics.mean(name), 4) for name in SCORES
                           if name in metrics.scores and math.isfinite(metrics.mean(name))}
    out.update(n_items=metrics.n_items, n_valid=metrics.n_valid, n_tied=metrics.n_tied,
               valid=round(metrics.valid, 4))
    return out


def snapshot_key(record: CellRecord) -> str:
    """``rev-<model revision>-in-<hash of the other inputs>``: readable where it matters."""
    inputs = inputs_of(record)
    revision = re.sub(r"[^A-Za-z0-9._-]+", "-", str(inputs["revision"] or "none"))[-24:]
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    return f"rev-{revision}-in-{digest[:16]}"


def _cell_of(test_location: Any) -> str:
    """The parametrize id of ``test_cell[<cell>]``."""
    name = str(test_location.testname)
    return name[name.index("[") + 1:-1] if name.endswith("]") and "[" in name else name


class CellSnapshotExtension(AmberSnapshotExtension):
    """Amber files, one per cell, in ``snapshots/<test module>/``; never "unused"."""

    snapshot_dirname = "snapshots"

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(Path(test_location.filepath).parent / cls.snapshot_dirname / test_location.basename)

    @classmethod
    def get_file_basename(cls, *, test_location: Any, index: Any) -> str:
        return file_stem(_cell_of(test_location))

    @classmethod
    def matches_test_location(cls, *, test_location: Any, snapshot_location: str) -> bool:
        return Path(snapshot_location).parent == Path(cls.dirname(test_location=test_location))

    def discover_snapshots(self, *, test_location: Any,
                           ignore_extensions: list[str] | None = None) -> SnapshotCollections:
        """None: which configurations a run covers is the harness's business, so syrupy never
        counts another configuration's (or a deselected cell's) snapshot as unused."""
        return SnapshotCollections()


class CellSnapshot:
    """The ``cell_snapshot`` fixture: ``check(record)`` compares (or records) the cell's snapshot.

    Args:
        snapshot: syrupy's ``snapshot`` fixture.
        record_all: Write every checked cell's snapshot (``--update-baselines``), as
            ``--snapshot-update`` does.
    """

    def __init__(self, snapshot: Any, record_all: bool = False) -> None:
        self.assertion = snapshot.use_extension(CellSnapshotExtension)
        self.updating = bool(snapshot.session.update_snapshots) or record_all
        self.record_all = record_all
        self.outcome: str | None = None

    def _existing(self, location: str) -> SnapshotCollection:
        """The cell's snapshot file as syrupy reads it; a damaged file fails the test naming it
        (syrupy would drop a merge's conflict markers and read both sides as one snapshot)."""
        if not Path(location).is_file():
            return SnapshotCollection(location=location)
        damage = file_damage(Path(location))
        if damage is None:
            try:
                return self.assertion.extension.read_snapshot_collection(snapshot_location=location)
            except Exception as exc:  # syrupy's own errors (a malformed amber file) are its own types
                damage = f"syrupy cannot read it ({type(exc).__name__}: {exc})"
        self.outcome = f"snapshot file unusable: {damage}"
        pytest.fail(f"{location}: {damage}; resolve it, or delete the file and record the snapshots "
                    "again with --snapshot-update", pytrace=False)

    def check(self, record: CellRecord) -> str:
        """``matched``, ``recorded`` or :data:`NONE`; fails the test naming each metric that
        differs from the snapshot of the same inputs."""
        key, data = snapshot_key(record), {"inputs": inputs_of(record), "metrics": rounded(record.metrics)}
        ext, where = self.assertion.extension, self.assertion.test_location
        location = ext.get_location(test_location=where, index=key)
        name = ext.get_snapshot_name(test_location=where, index=key)
        existing = self._existing(location)
        if not self.updating and existing.get(name) is None:
            self.outcome = NONE
            return NONE
        if self.updating:
            self._prune_other_revisions(existing, name, key)
        if self.record_all:
            ext.write_snapshot(snapshot_location=location, snapshots=[(ext.serialize(data), where, key)])
            cleanup_snapshot_write_sidecars(location)  # syrupy's lock file under xdist
        old = existing.get(name)
        newer = [] if self.updating or old is None else _predated(old.data, data)
        if newer:  # a harness that computes a metric more: the snapshot's own values still hold
            data = {**data, "metrics": {k: v for k, v in data["metrics"].items() if k not in newer}}
        matched = self.assertion(name=key) == data  # syrupy compares, counts and (updating) writes
        if not matched:
            pytest.fail(_difference(record.cell, key, old.data if old else None, data), pytrace=False)
        self.outcome = "recorded" if self.updating else "matched"
        if newer:
            self.outcome = f"{PREDATES}{', '.join(newer)}"
        return self.outcome

    def _prune_other_revisions(self, existing: SnapshotCollection, name: str, key: str) -> None:
        """Entries of this cell under another model revision are superseded by this one."""
        prefix = name[:-len(key) - 2]  # test_cell[<cell>]
        revision = key.split("-in-")[0]
        stale = {s.name for s in existing if s.name.startswith(prefix)
                 and not s.name[len(prefix):].startswith(f"[{revision}-in-")}
        if stale:
            self.assertion.extension.delete_snapshots(snapshot_location=existing.location,
                                                      snapshot_names=stale)


def file_damage(path: Path) -> str | None:
    """Why a snapshot file cannot be trusted (None: it can): not UTF-8 text, or a merge's
    conflict markers left in it (an amber file's own lines never start with them)."""
    try:
        text = read_regular(path).decode("utf-8")
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start})"
    from harness.runner.baseline_file import conflict_line  # numpy and scipy: when first needed

    line = conflict_line(text)
    return None if line is None else f"holds a merge's conflict markers (line {line})"


def _difference(cell: str, key: str, old: Any, new: Mapping[str, Any]) -> str:
    """Which metric moved, from what to what (syrupy's own diff is cut to a few lines)."""
    before = _metrics_in(old)
    lines = [f"{cell}: the outputs differ from the snapshot of the same inputs ({key})"]
    for name, value in new["metrics"].items():
        if before.get(name) != value:
            lines.append(f"  {name}: snapshot {before.get(name)} -> now {value}")
    lines.append("  (same model revision, data and configuration: a nondeterminism or a change "
                 "in the harness; --snapshot-update records the new values)")
    return "\n".join(lines)


def _metrics_in(serialized: Any) -> dict[str, Any]:
    """The metrics of an amber-serialized snapshot (``'name': value,`` lines): its last section,
    after the inputs (which might hold a key of that name)."""
    text = str(serialized or "")
    section = text.rsplit("'metrics':", 1)[-1] if "'metrics':" in text else ""
    out: dict[str, Any] = {}
    for name, value in re.findall(r"'([a-z0-9_]+)': ([^,\n]+),", section):
        out[name] = _amber_value(value)
    return out


def _amber_value(text: str) -> Any:
    """A value as amber writes it (Python's repr): ``None``, ``0.1234``, ``nan``; another
    (a string) as its text."""
    if text in _AMBER_WORDS:
        return _AMBER_WORDS[text]
    try:
        return _json.loads(text)
    except ValueError:
        return text


_AMBER_WORDS = {"None": None, "True": True, "False": False, "nan": math.nan, "inf": math.inf,
                "-inf": -math.inf}
