import json

import numpy as np
import pytest

from harness.record import CellMetrics, CellRecord, ItemRecord
from harness.runner.baseline_file import BaselineError, read_baseline, save_baseline
from harness.runner.gating import gate
from harness.runner.snapshots import file_damage

VOTES = {f"i{k}": np.eye(3)[k % 3] * 4 + 1 for k in range(20)}


def record(probs_for, labels=("a", "b", "c"), revision="r1"):
    items = tuple(ItemRecord(i, tuple(probs_for(v).tolist())) for i, v in VOTES.items())
    return CellRecord("m-d-s", "m", "d", "s", labels, CellMetrics(len(items), len(items), 1.0),
                      0.0, 0.0, items, {"model": {"revision": revision}})


@pytest.fixture
def saved(tmp_path):
    return save_baseline(record(lambda v: (v + 1) / (v + 1).sum()), tmp_path, VOTES)


def rewrite(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_saved_baseline_reads_back_whole(saved):
    baseline = read_baseline(saved, "m-d-s")
    assert baseline.labels == ("a", "b", "c") and baseline.revision == "r1" and baseline.has_revision
    assert len(baseline.probs) == 20 and baseline.scores["i0"]["js"] >= 0


def third(**fields):
    return lambda d: d["items"][2].update(fields)


@pytest.mark.parametrize("change, says", [
    (third(probs=[0.5, 0.5]), "item 'i2' has a prediction of 2 values for 3 labels"),
    (third(probs=[float("nan"), 0.5, 0.5]), "item 'i2' has a prediction that is not finite"),
    (third(probs=[-0.1, 0.6, 0.5]), "item 'i2' has a prediction that is not finite non-negative"),
    (third(probs=["0.2", 0.3, 0.5]), "item 'i2' has a prediction that is not finite"),
    (third(probs={"a": 1}), "item 'i2' has a prediction of a dict for 3 labels"),
    (third(scores={"js": "low"}), "item 'i2' has scores that are not numbers"),
    (lambda d: d["items"].append(d["items"][0]), "item 'i0' is given twice"),
    (lambda d: d["items"].append(["i99"]), "item 20 is not an object with an id"),
    (lambda d: d.update(items={"i0": 1}), "its items are not a list"),
    (lambda d: d.update(labels=["a", "a", "b"]), "its labels are not a list of distinct names"),
    (lambda d: d.update(cell="other-cell"), "holds the baseline of 'other-cell', not of 'm-d-s'"),
    (lambda d: d.pop("cell"), "not a baseline (no cell named)"),
    (lambda d: d.update(inputs=["seed"]), "its inputs are not an object"),
])
def test_a_damaged_baseline_is_refused_naming_the_file_the_item_and_why(saved, change, says):
    rewrite(saved, change)
    with pytest.raises(BaselineError, match="^" + str(saved).replace(".", r"\.")) as caught:
        read_baseline(saved, "m-d-s")
    assert says in str(caught.value)


@pytest.mark.parametrize("text, says", [
    ("<<<<<<< HEAD\n{}\n=======\n[]\n>>>>>>> b\n", "holds a merge's conflict markers (line 1)"),
    ('{"cell": "m-d-s",\n  "items": [\n', "not JSON (line 3, column 1)"),
    ("[1, 2]", "not a baseline (a JSON list, not an object)"),
    ("[" * 100_000, "not JSON (nested deeper than the JSON reader goes: 1,000 levels or more, by "
                    "Python's version)"),
    # an integer no float holds: float() raised OverflowError out of the gate
    ('{"cell": "m-d-s", "labels": ["a"], "items": [{"id": "i0", "probs": [1%s]}]}' % ("0" * 400),
     "not JSON (an integer of 401 digits, beyond a double's range)"),
], ids=["conflict", "cut", "list", "deep", "huge-integer"])  # pytest 8 would put 100 kB in an id
def test_a_baseline_that_is_not_one_says_what_it_is(saved, text, says):
    saved.write_text(text)
    with pytest.raises(BaselineError, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_baseline(saved)
    saved.write_bytes(b"\xff\xfe{}")
    with pytest.raises(BaselineError, match=r"not UTF-8 text \(byte 0\)"):
        read_baseline(saved)


def test_labels_in_another_order_are_read_by_name_and_another_label_set_is_refused(tmp_path):
    truth = record(lambda v: v / v.sum())
    path = save_baseline(truth, tmp_path, VOTES)
    rewrite(path, lambda d: [d["labels"].reverse()] + [i["probs"].reverse() for i in d["items"]])
    verdict = gate(truth, VOTES, path)
    assert verdict.failures == [] and all(c.verdict == "same" for c in verdict.changes)
    assert all(c.before == c.after for c in verdict.changes)  # by position: far worse than the run
    rewrite(path, lambda d: d.update(labels=["a", "b", "x"]))
    with pytest.raises(BaselineError, match=r"recorded for the labels \['a', 'b', 'x'\], but the "
                                            r"cell's labels are \['a', 'b', 'c'\]"):
        gate(truth, VOTES, path)


def test_a_baseline_without_a_revision_is_taken_as_the_runs(saved):
    rewrite(saved, lambda d: d.pop("revision"))
    verdict = gate(record(lambda v: (v + 1) / (v + 1).sum(), revision="r2"), VOTES, saved)
    assert not verdict.model_updated


def test_a_snapshot_file_with_conflict_markers_or_not_utf8_is_damaged(tmp_path):
    path = tmp_path / "cell.ambr"
    path.write_text("# serializer version: 1\n# name: x\n  dict({\n  })\n# ---\n")
    assert file_damage(path) is None
    path.write_text("# serializer version: 1\n<<<<<<< HEAD\n  1\n=======\n  2\n>>>>>>> b\n")
    assert file_damage(path) == "holds a merge's conflict markers (line 2)"
    path.write_bytes(b"# serializer version: 1\n\xff")
    assert file_damage(path) == "not UTF-8 text (byte 24)"


def test_a_baseline_is_read_from_a_path_given_as_text_and_saved_again_over_itself(saved, tmp_path):
    again = save_baseline(record(lambda v: (v + 1) / (v + 1).sum()), tmp_path, VOTES)
    assert again == saved and read_baseline(str(saved)).cell == "m-d-s"
    with pytest.raises(BaselineError, match="nowhere.json: cannot be read"):
        read_baseline(tmp_path / "nowhere.json")


def test_a_zero_probability_is_one_and_labels_in_another_order_keep_an_invalid_item(saved):
    rewrite(saved, lambda d: (d.update(labels=["c", "a", "b"]),
                              d["items"][0].update(probs=[0, 0.25, 0.75]),
                              d["items"][1].update(probs=None)))
    probs = read_baseline(saved).probs_for(("a", "b", "c"))
    assert probs["i0"] == [0.25, 0.75, 0.0] and probs["i1"] is None


def test_a_baseline_goes_into_a_folder_made_for_it_and_is_frozen(tmp_path):
    import dataclasses

    path = save_baseline(record(lambda v: v / v.sum()), tmp_path / "evals" / "baselines", VOTES)
    assert path.parent == tmp_path / "evals" / "baselines"
    with pytest.raises(dataclasses.FrozenInstanceError):
        read_baseline(path).revision = "r2"


def test_a_baseline_that_cannot_be_read_says_why(tmp_path):
    (tmp_path / "m-d-s.json").mkdir()
    with pytest.raises(BaselineError, match=r"m-d-s\.json: cannot be read \(is a directory, not a "
                                            r"regular file\)$"):
        read_baseline(tmp_path / "m-d-s.json")
    with pytest.raises(BaselineError, match=r"gone\.json: cannot be read \(No such file or directory\)$"):
        read_baseline(tmp_path / "gone.json")
