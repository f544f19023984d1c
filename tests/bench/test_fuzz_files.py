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


def test_every_field_is_found_and_set_in_turn(tmp_path):
    import json

    from bench.fuzz_files import ODD_VALUES, field_cases, json_paths, set_field

    data = {"a": 1, "b": [{"c": 2}, 3, 4], "items": [5]}
    assert json_paths(data) == [("a",), ("b",), ("items",), ("b", 0), ("b", 1), ("b", 0, "c"),
                                ("items", 0)]
    (tmp_path / "x.json").write_text(json.dumps(data))
    lines = [{"h": 1}, {"i": [1]}, {"j": 2}, {"k": 3}]
    (tmp_path / "x.items.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    cases = field_cases(tmp_path, "x")
    wheres = [(name, line, where) for name, line, where, _ in cases[::len(ODD_VALUES) + 1]]
    assert wheres == [("x.json", None, ("a",)), ("x.json", None, ("b",)), ("x.json", None, ("b", 0)),
                      ("x.json", None, ("b", 1)), ("x.json", None, ("b", 0, "c")),
                      ("x.items.jsonl", 0, ("h",)), ("x.items.jsonl", 1, ("i",)),
                      ("x.items.jsonl", 1, ("i", 0))]  # the summary's items left to the items file
    assert [value for *_, value in cases[:len(ODD_VALUES) + 1]] == [*ODD_VALUES, True]
    set_field(tmp_path / "x.items.jsonl", 1, ("i", 0), "odd")
    assert (tmp_path / "x.items.jsonl").read_text().split("\n") == [
        json.dumps(lines[0]), json.dumps({"i": ["odd"]}), json.dumps(lines[2]), json.dumps(lines[3]), ""]
    set_field(tmp_path / "x.json", None, ("b", 0, "c"), None)
    assert json.loads((tmp_path / "x.json").read_text())["b"][0] == {"c": None}


def test_a_sample_of_the_field_cases_is_drawn_by_its_seed_in_their_order():
    from bench.fuzz_files import drawn

    cases = list(range(100))
    sample = drawn(cases, 10, seed=5)
    assert len(set(sample)) == 10 and sample == sorted(sample) and set(sample) <= set(cases)
    assert drawn(cases, 10, seed=5) == sample and drawn(cases, 10, seed=6) != sample
    assert drawn(cases, None, seed=5) == cases and drawn(cases, 100, seed=5) == cases


def test_the_page_fuzzer_copies_the_first_item_once_per_odd_value():
    import json

    from bench.fuzz_files import ODD_VALUES
    from bench.fuzz_page import odd_items

    lines = [json.dumps({"cell": "c"}), json.dumps({"id": "a", "probs": [0.5, 0.5]}),
             json.dumps({"id": "b"})]
    out = odd_items(lines, ("probs", 1)).split("\n")
    assert out[0] == lines[0] and out[-1] == lines[2] and len(out) == len(ODD_VALUES) + 3
    copies = [json.loads(line) for line in out[1:-1]]
    assert [c["id"] for c in copies] == [f"odd{k}" for k in range(len(ODD_VALUES) + 1)]
    assert [c["probs"][1] for c in copies] == [*ODD_VALUES, True] and all(
        c["probs"][0] == 0.5 for c in copies)


def test_the_page_fuzzer_can_take_the_first_item_of_a_rule_and_puts_its_copies_first():
    import json

    import pytest

    from bench.fuzz_files import ODD_VALUES
    from bench.fuzz_page import item_line, odd_items

    lines = [json.dumps({"cell": "c"}), *(json.dumps({"id": i, "rule": rule}) for i, rule in (
        ("a", "json_dict"), ("b", None), ("c", "uniform_guess"), ("d", "uniform_guess"))), ""]
    assert [item_line(lines, rule) for rule in (None, "none", "uniform_guess")] == [1, 2, 3]
    with pytest.raises(SystemExit, match="no item of rule 'keyword'"):
        item_line(lines, "keyword")
    out = [json.loads(line) for line in odd_items(lines, ("rule",), 3).split("\n")[1:-1]]
    assert [item["id"] for item in out[-3:]] == ["a", "b", "d"] and len(out) == len(ODD_VALUES) + 4
    assert {item["id"][:3] for item in out[:-3]} == {"odd"} and out[0]["rule"] is None


def test_the_cache_fuzzer_damages_one_row_of_a_copy_and_tells_a_moved_prediction(tmp_path):
    import sqlite3

    from bench.fuzz_cache import damaged_copy, moved

    clean = tmp_path / "clean.sqlite"
    with sqlite3.connect(clean) as db:
        db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT)")
        db.executemany("INSERT INTO entries VALUES (?, ?)", [("a", "1"), ("b", "2")])
    copy = damaged_copy(clean, tmp_path, "b", "[[")
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT key, value FROM entries ORDER BY key").fetchall() == [
            ("a", "1"), ("b", "[[")]
    with sqlite3.connect(clean) as db:
        assert db.execute("SELECT value FROM entries WHERE key = 'b'").fetchone() == ("2",)
    assert not moved([[0.5, 0.5], None], [[0.5 + 1e-7, 0.5], None])
    assert moved([[0.5, 0.5]], [[0.6, 0.4]]) and moved([None], [[0.5, 0.5]])


def test_fields_sets_a_drawn_sample_of_a_cell_s_fields_and_counts_what_raised(tmp_path, capsys,
                                                                              monkeypatch):
    import harness
    from bench.fuzz_files import fields
    from harness.data import load_dataset
    from harness.record import write_record

    run, dataset = tmp_path / "run", load_dataset("crema_d")[:6]
    for reference in ("label-prior", "uniform"):
        write_record(harness.evaluate(reference, dataset, "base", n_resamples=10), run)
    cell = "label-prior-crema_d-base"
    assert fields(run, cell, sample=3, seed=1) == 0
    assert capsys.readouterr().out == f"3 fields of {cell} (a sample, seed 1): 0 unexpected exceptions\n"

    def crash(argv):
        raise RuntimeError("a crash")

    monkeypatch.setattr("harness.report.__main__.main", crash)
    assert fields(run, cell, sample=2, seed=1) == 2
    out = capsys.readouterr().out
    assert out.count("RuntimeError: a crash") == 2
    assert out.endswith(f"2 fields of {cell} (a sample, seed 1): 2 unexpected exceptions\n")

