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
