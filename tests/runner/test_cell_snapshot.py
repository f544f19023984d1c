"""``CellSnapshot.check`` in process, through syrupy's own assertion, session and amber files:
recorded, matched, none for this configuration, a difference named, a snapshot predating a
metric, another revision's entries pruned only when updating, a damaged file refused."""

import dataclasses
from types import SimpleNamespace

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation
from syrupy.session import SnapshotSession

from harness.record import CellMetrics, CellRecord, Estimate
from harness.runner.snapshots import NONE, PREDATES, CellSnapshot, CellSnapshotExtension, snapshot_key

META = {"model": {"name": "m", "revision": "r1", "dtype": "float32"},
        "dataset": {"name": "iemocap", "manifest": "f00", "options": {}},
        "prompts": {"set": "paper", "templates": {"base/iemocap": "1"}},
        "decoding": {"mode": "greedy"}, "seed": 0}


def record(cell="m-iemocap-base", revision="r1", js=0.25, **scores):
    metrics = CellMetrics(4, 4, 1.0, {"js": Estimate(js, (0.1, 0.3)),
                                      **{k: Estimate(v, (0.0, 1.0)) for k, v in scores.items()}})
    meta = {**META, "model": {**META["model"], "revision": revision}}
    return CellRecord(cell, "m", "iemocap", "base", ("a", "b"), metrics, 0.0, 0.0, (), meta)


def test_cell(): ...  # the test function the stand-in items name


class Item:
    """What syrupy's location reads of a pytest item (hashable, as syrupy keys writes by it)."""

    def __init__(self, path, name):
        self.path, self.obj, self.name = path, test_cell, name
        self.nodeid = f"{path.name}::{name}"


class Grid:
    """A grid module's cells at ``tmp_path/test_grid.py``, checked as pytest would check them."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "test_grid.py"
        self.folder = tmp_path / "snapshots" / "test_grid"

    def check(self, rec, update=False, record_all=False):
        """The outcome, the checker kept as ``self.checker``: a fresh syrupy session, as one
        pytest run has."""
        option = SimpleNamespace(update_snapshots=update, warn_unused_snapshots=False,
                                 snapshot_declaration_order=False)
        plugins = SimpleNamespace(hasplugin=lambda name: False)  # no xdist
        config = SimpleNamespace(option=option, pluginmanager=plugins)
        session = SnapshotSession(SimpleNamespace(config=config))
        name = f"test_cell[{rec.cell}]"
        snapshot = SnapshotAssertion(session=session, extension_class=AmberSnapshotExtension,
                                     test_location=PyTestLocation(Item(self.path, name)),
                                     update_snapshots=update)
        checker = self.checker = CellSnapshot(snapshot, record_all=record_all)
        try:
            outcome = checker.check(rec)
        finally:
            session.flush_snapshot_write_queue()
        return outcome

    def names(self, cell="m-iemocap-base"):
        file = self.folder / f"{cell}.ambr"
        text = file.read_text() if file.exists() else ""
        return [line.removeprefix("# name: ") for line in text.splitlines()
                if line.startswith("# name: ")]


def test_no_snapshot_then_recorded_then_matched(tmp_path):
    grid = Grid(tmp_path)
    assert grid.check(record()) == NONE == grid.checker.outcome and not grid.folder.exists()
    assert grid.check(record(), update=True) == "recorded"
    assert grid.names() == [f"test_cell[m-iemocap-base][{snapshot_key(record())}]"]
    assert grid.check(record()) == "matched" == grid.checker.outcome
    assert grid.check(record(revision="r2")) == NONE  # another revision: another key


def test_outputs_that_moved_fail_naming_the_metric(tmp_path):
    grid = Grid(tmp_path)
    grid.check(record(), update=True)
    with pytest.raises(pytest.fail.Exception) as failed:
        grid.check(record(js=0.5))
    message = str(failed.value)
    assert message.startswith("m-iemocap-base: the outputs differ from the snapshot")
    assert "  js: snapshot 0.25 -> now 0.5" in message.splitlines()
    assert "Traceback" not in failed.exconly() and not failed.value.pytrace
    assert grid.check(record(js=0.5), update=True) == "recorded"
    assert grid.check(record(js=0.5)) == "matched"


def test_a_snapshot_predating_a_metric_matches_without_it_and_still_compares_the_rest(tmp_path):
    grid = Grid(tmp_path)
    grid.check(record(), update=True)
    assert grid.check(record(uar=0.5)) == f"{PREDATES}uar" == grid.checker.outcome
    with pytest.raises(pytest.fail.Exception, match="js: snapshot 0.25 -> now 0.3"):
        grid.check(record(js=0.3, uar=0.5))
    assert grid.check(record(uar=0.5), update=True) == "recorded"
    with pytest.raises(pytest.fail.Exception, match="uar: snapshot 0.5 -> now 0.6"):
        grid.check(record(uar=0.6))  # recorded with it: now compared


def test_updating_prunes_this_cell_s_other_revisions_only(tmp_path):
    grid, elsewhere = Grid(tmp_path), Grid(tmp_path / "b")
    other_inputs = record(revision="r1", js=0.2)
    other_inputs = dataclasses.replace(other_inputs, meta={**other_inputs.meta, "seed": 1})
    grid.check(record(revision="r0"), update=True)
    elsewhere.check(other_inputs, update=True)  # recorded here, it would prune r0's
    file = grid.folder / "m-iemocap-base.ambr"
    added = (elsewhere.folder / file.name).read_text().split("\n", 1)[1]
    foreign = "# name: test_cell[m-iemocap-base-x][rev-r0-in-0]\n  'x'\n# ---\n"
    file.write_text(file.read_text() + added + foreign)
    names = grid.names()
    grid.check(record())  # not updating: nothing pruned
    assert grid.names() == names and len(names) == 3
    grid.check(record(), update=True)
    assert sorted(grid.names()) == sorted(
        [f"test_cell[m-iemocap-base][{snapshot_key(r)}]" for r in (record(), other_inputs)]
        + ["test_cell[m-iemocap-base-x][rev-r0-in-0]"])


def test_the_fixture_records_only_when_asked():
    snapshot = SimpleNamespace(use_extension=lambda extension: None,
                               session=SimpleNamespace(update_snapshots=False))
    checker = CellSnapshot(snapshot)
    assert (checker.record_all, checker.updating, checker.outcome) == (False, False, None)


def test_record_all_writes_at_once_without_syrupy_s_update(tmp_path):
    grid = Grid(tmp_path)
    grid.check(record(revision="r0"), update=True)
    lock = grid.folder / "m-iemocap-base.ambr.lock"  # a write's sidecar, as xdist leaves one
    lock.write_text("")
    assert grid.check(record(), record_all=True) == "recorded" and grid.names() == [
        f"test_cell[m-iemocap-base][{snapshot_key(record())}]"]
    assert sorted(p.name for p in grid.folder.iterdir()) == ["m-iemocap-base.ambr"]
    assert grid.check(record()) == "matched"


def test_a_damaged_file_fails_the_cell_naming_the_file(tmp_path):
    grid = Grid(tmp_path)
    grid.check(record(), update=True)
    file = grid.folder / "m-iemocap-base.ambr"
    file.write_text(file.read_text() + "<<<<<<< HEAD\n")
    with pytest.raises(pytest.fail.Exception) as failed:
        grid.check(record())
    assert str(failed.value).startswith(f"{file}: holds a merge's conflict markers (line ")
    assert not failed.value.pytrace
    assert grid.checker.outcome.startswith("snapshot file unusable: holds a merge's conflict")
    file.write_text("# serializer version: 1\n# name:\n  dict({\n  })\n# ---\n")
    with pytest.raises(pytest.fail.Exception) as failed:
        grid.check(record())
    assert str(failed.value).startswith(
        f"{file}: syrupy cannot read it (MalformedAmberFile: Missing snapshot name.); resolve it")


def test_the_extension_owns_only_its_cells_folder(tmp_path):
    grid = Grid(tmp_path)
    location = PyTestLocation(Item(grid.path, "test_cell[c]"))
    own = CellSnapshotExtension.matches_test_location
    assert own(test_location=location, snapshot_location=str(grid.folder / "c.ambr")) is True
    assert own(test_location=location, snapshot_location=str(tmp_path / "x" / "c.ambr")) is False
