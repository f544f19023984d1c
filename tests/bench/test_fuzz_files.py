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
