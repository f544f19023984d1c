"""The file fuzzer runs (a few cases; its long runs are made by hand, see the README)."""

import random

from bench.fuzz_files import main, mutate_bytes, mutate_json


def test_a_few_mutated_corpora_load_or_raise_data_errors(capsys):
    assert main(["corpora", "--cases", "6", "--seed", "1"]) == 0
    assert "6 cases, seed 1: 0 unexpected exceptions" in capsys.readouterr().out


def test_mutations_are_seeded_and_change_something():
    data = b"id,label\nclip1,anger\nclip2,sad\n"
    first = [mutate_bytes(data, random.Random(seed)) for seed in range(20)]
    assert first == [mutate_bytes(data, random.Random(seed)) for seed in range(20)]
    assert sum(m != data for m in first) >= 18
    record = {"meta": {"dataset": {"options": {}}}, "metrics": {"bins": {"edges": [0, 1]}}}
    mutate_json(record, random.Random(3))
    assert record != {"meta": {"dataset": {"options": {}}}, "metrics": {"bins": {"edges": [0, 1]}}}


def test_a_few_mutated_clips_read_alike_or_raise_audio_errors(capsys):
    assert main(["clips", "--cases", "12", "--seed", "1"]) == 0
    assert "12 cases, seed 1: 0 unexpected exceptions" in capsys.readouterr().out


def test_one_number_of_a_cell_file_is_set_to_an_odd_one(tmp_path):
    import json

    from bench.fuzz_files import ODD_NUMBERS, number_paths, set_number

    data = {"a": 1, "b": [0.5, 2, 3], "c": {"d": True, "e": "x", "f": [{"g": 7}]}}
    assert number_paths(data) == [("a",), ("b", 0), ("b", 1), ("c", "f", 0, "g")]
    summary = tmp_path / "cell.json"
    items = tmp_path / "cell.items.jsonl"
    for seed in range(8):
        summary.write_text(json.dumps(data))
        items.write_text("\n".join(json.dumps(line) for line in ({"h": 1}, data, data)) + "\n")
        set_number(summary, random.Random(seed))
        set_number(items, random.Random(seed))
        lines = items.read_text().split("\n")
        assert json.loads(lines[0]) == {"h": 1} and lines[3] == ""
        for changed in (json.loads(summary.read_text()), *(json.loads(x) for x in lines[1:3])):
            if changed == data:
                continue
            [where] = [p for p in number_paths(data) if repr(_at(changed, p)) != repr(_at(data, p))]
            assert repr(_at(changed, where)) in map(repr, ODD_NUMBERS)
        assert json.loads(summary.read_text()) != data
        assert [json.loads(x) for x in lines[1:3]].count(data) == 1


def _at(value, path):
    for key in path:
        value = value[key]
    return value
