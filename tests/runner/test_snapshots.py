"""The snapshot key: what determines a cell's output, and nothing else."""

import dataclasses

from harness.record import CellMetrics, CellRecord, inputs_of
from harness.runner.snapshots import snapshot_key

META = {
    "model": {"name": "m", "revision": "sha256:abc", "dtype": "float32", "device": "cpu",
              "options": {"long_audio": "truncate"}},
    "verifier": "m", "verifier_revision": "sha256:abc",
    "dataset": {"name": "iemocap", "root": "/data/a", "n_items": 26, "manifest": "f00",
                "options": {}},
    "prompts": {"set": "paper", "version": 1, "templates": {"base/iemocap": "123"}},
    "decoding": {"mode": "beam", "num_candidates": 5}, "seed": 0,
    "strategy_config": {"beams": 5, "tau": 1.0, "alpha": "raw"},
    "versions": {"torch": "2.13"}, "git_commit": "abc", "host": "vm", "finished": "today",
}


def record(**meta):
    return CellRecord("m-iemocap-w-bon", "m", "iemocap", "w-bon", ("a",), CellMetrics(1, 1, 1.0),
                      0.0, 0.0, (), {**META, **meta})


def changed(section, **values):
    return record(**{section: {**META[section], **values}})


def test_where_and_when_a_cell_ran_do_not_change_its_key():
    key = snapshot_key(record())
    assert key.startswith("rev-sha256-abc-in-")
    for other in (changed("model", device="cuda:0"), changed("dataset", root="/elsewhere"),
                  record(host="gpu-box", finished="tomorrow", git_commit="def",
                         versions={"torch": "2.14"})):
        assert snapshot_key(other) == key


def test_everything_that_changes_an_output_changes_the_key():
    key = snapshot_key(record())
    others = [changed("model", revision="sha256:def"), changed("model", dtype="bfloat16"),
              changed("model", options={"long_audio": "chunk"}), record(verifier_revision="x"),
              changed("dataset", manifest="a limit or other items"),
              changed("dataset", options={"sessions": [1]}),
              changed("prompts", set="harness-v0"), changed("decoding", num_candidates=7),
              changed("strategy_config", tau=2.0), changed("strategy_config", alpha="mean"),
              record(seed=1)]
    keys = [snapshot_key(r) for r in others]
    assert key not in keys and len(set(keys)) == len(keys)
    assert snapshot_key(others[0]).startswith("rev-sha256-def-in-")


def test_a_chance_baseline_is_keyed_without_prompts():
    chance = dataclasses.replace(record(decoding=None), model="uniform")
    assert "prompts" not in inputs_of(chance) and "strategy_config" not in inputs_of(chance)
    assert snapshot_key(dataclasses.replace(chance, meta={**chance.meta, "prompts": {}})) == \
        snapshot_key(chance)


def test_a_difference_names_only_the_metrics_that_moved_reading_amber_s_values():
    from syrupy.extensions.amber import AmberSnapshotExtension

    from harness.runner.snapshots import _difference, _metrics_in

    old = AmberSnapshotExtension().serialize({"inputs": {"x": 1}, "metrics": {
        "js": 0.1234, "n_items": 3, "n_tied": None, "valid": 1.0, "odd": "text"}})
    assert _metrics_in(old) == {"js": 0.1234, "n_items": 3, "n_tied": None, "valid": 1.0,
                                "odd": "'text'"}
    said = _difference("m-d-s", "rev-x-in-y", old, {"metrics": {
        "js": 0.2, "n_items": 3, "n_tied": None, "valid": 1.0, "acc": 0.5}})
    assert said.splitlines()[:3] == [
        "m-d-s: the outputs differ from the snapshot of the same inputs (rev-x-in-y)",
        "  js: snapshot 0.1234 -> now 0.2", "  acc: snapshot None -> now 0.5"]
    assert len(said.splitlines()) == 4 and _metrics_in(None) == {} and _metrics_in("x") == {}


def test_amber_s_words_read_as_their_values_and_nested_inputs_are_not_metrics():
    import math

    from syrupy.extensions.amber import AmberSnapshotExtension

    from harness.runner.snapshots import _amber_value, _metrics_in

    assert [_amber_value(w) for w in ("None", "True", "False", "inf", "-inf", "0.5", "x")] == \
        [None, True, False, math.inf, -math.inf, 0.5, "x"]
    assert math.isnan(_amber_value("nan"))
    assert _amber_value("[" * 100_000) == "[" * 100_000  # too deep for JSON: text, as "x" is
    old = AmberSnapshotExtension().serialize({
        "inputs": {"strategy_config": {"metrics": {"js": 9, "extra": 1}}},
        "metrics": {"js": 0.1, "bc": 0.9}})
    assert _metrics_in(old) == {"js": 0.1, "bc": 0.9}


def test_the_key_does_not_depend_on_the_order_of_a_mapping_s_keys():
    ordered = changed("dataset", options={"sessions": [1], "speakers": "all"})
    reordered = changed("dataset", options={"speakers": "all", "sessions": [1]})
    assert snapshot_key(ordered) == snapshot_key(reordered)


def test_a_snapshot_keeps_finite_means_to_four_decimals_and_the_counts():
    from harness.record import Estimate
    from harness.runner.snapshots import rounded

    metrics = CellMetrics(3, 2, 2 / 3, {"js": Estimate(0.123456, (0.1, 0.2)),
                                        "bc": Estimate(float("nan"), (0.1, 0.2))}, n_tied=1)
    assert rounded(metrics) == {"js": 0.1235, "n_items": 3, "n_valid": 2, "n_tied": 1,
                                "valid": 0.6667}


def test_a_snapshot_recorded_before_a_metric_was_added_is_compared_without_it():
    from harness.runner.snapshots import _predated

    now = {"metrics": {"js": 0.1, "uar": 0.5, "uar_untied": 0.4}}
    assert _predated("'metrics': dict({\n    'js': 0.1,\n  }),", now) == ["uar", "uar_untied"]
    assert _predated("'metrics': dict({\n    'uar': 0.5,\n  }),", now) == []
    assert _predated("'metrics': dict({\n    'js': 0.1,\n  }),", {"metrics": {"js": 0.1}}) == []


def test_the_key_keeps_the_revision_s_last_24_characters_and_a_16_digit_hash():
    long = snapshot_key(changed("model", revision="sha256:" + "0123456789" * 4))
    revision, digest = long.removeprefix("rev-").split("-in-")
    assert revision == ("0123456789" * 4)[-24:] and len(digest) == 16
    assert snapshot_key(changed("model", revision=None)).startswith("rev-none-in-")


def test_a_cell_is_named_by_its_parametrize_id_and_a_damaged_file_says_why(tmp_path):
    from types import SimpleNamespace

    from harness.runner.snapshots import _cell_of, file_damage

    assert _cell_of(SimpleNamespace(testname="test_cell[m-d-s[x]]")) == "m-d-s[x]"
    assert _cell_of(SimpleNamespace(testname="test_cell")) == "test_cell"
    assert _cell_of(SimpleNamespace(testname="odd]")) == "odd]"
    path = tmp_path / "c.ambr"
    assert file_damage(path) == "cannot be read (No such file or directory)"
    path.write_bytes(b"# name: x\n\xff")
    assert file_damage(path) == "not UTF-8 text (byte 10)"
    path.write_text("# name: x\n<<<<<<< HEAD\n")
    assert file_damage(path) == "holds a merge's conflict markers (line 2)"
    path.write_text("# name: x\n  'js': 0.1,\n")
    assert file_damage(path) is None
