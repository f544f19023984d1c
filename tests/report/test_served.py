"""``harness.report.served``: the snapshots an API model's answers came from, said among what a
report's numbers are comparable with, and each cell whose answers mix snapshots named."""

import dataclasses
import json

import pytest

from harness.record import CellRecord, RecordError
from harness.report.served import SHOWN_MIXED, answered_as, mixed_cells
from harness.report.tables import TABLES
from harness.report.terminal import comparable_with, results_lines
from tests.report.test_tables import cell


def served(record: CellRecord, answered: dict) -> CellRecord:
    return dataclasses.replace(record, meta={**record.meta, "served_by": answered})


def test_one_snapshot_a_model_is_named_and_several_are_counted_commonest_first():
    cells = [served(cell("gpt-4o", "iemocap", "base", 0.4, 0.7, 0.3), {"gpt-4o": {"s1": 10}}),
             served(cell("gpt-4o", "crema_d", "base", 0.4, 0.7, 0.3), {"gpt-4o": {"s1": 10}}),
             served(cell("gemini", "iemocap", "base", 0.4, 0.7, 0.3), {"gemini": {"g1": 10}}),
             cell("tiny", "iemocap", "base", 0.4, 0.7, 0.3)]
    assert answered_as(cells) == "gemini from g1, gpt-4o from s1"
    assert mixed_cells(cells) == ""
    cells[1] = served(cells[1], {"gpt-4o": {"s2": 3, "s1": 7}})
    assert answered_as(cells) == "gemini from g1, gpt-4o from s1 (17 answers) and s2 (3)"
    assert mixed_cells(cells) == "gpt-4o crema_d base: gpt-4o from s1 (7 answers) and s2 (3)"
    assert answered_as(cells[3:]) == ""  # a local model's answers name no snapshot


def test_the_conventions_say_the_snapshots_and_the_terminal_names_a_mixed_cell():
    cells = [served(cell("gpt-4o", "iemocap", "base", 0.4, 0.7, 0.3),
                    {"gpt-4o": {"gpt-4o-audio-preview-2024-12-17": 8,
                                "gpt-4o-audio-preview-2025-06-03": 2}})]
    tables = {name: TABLES[name](cells) for name in ("strategies", "items")}
    assert ("; answers by snapshot: gpt-4o from gpt-4o-audio-preview-2024-12-17 (8 answers) and "
            "gpt-4o-audio-preview-2025-06-03 (2).") in comparable_with(cells, tables)
    lines = results_lines(cells, tables)
    assert all(len(line) <= 100 for line in lines)
    # a name is never cut at one of its hyphens to fit a line
    assert all(not line.endswith("-") for line in lines)
    assert "Their means mix models" in " ".join(lines)
    plain = [cell("tiny", "iemocap", "base", 0.4, 0.7, 0.3)]
    plain_tables = {name: TABLES[name](plain) for name in ("strategies", "items")}
    assert "snapshot" not in " ".join(results_lines(plain, plain_tables))


def test_a_model_answering_under_many_names_shows_the_commonest_then_how_many_more():
    names = {f"v{k:03d}": 1 for k in range(500)} | {"v-main": 40}
    cells = [served(cell("proxy", "iemocap", "base", 0.4, 0.7, 0.3), {"proxy": names})]
    assert answered_as(cells) == ("proxy from v-main (40 answers), v000 (1), v001 (1) and 498 more "
                                  "names (498)")
    assert len(mixed_cells(cells)) < 200


def test_the_first_mixed_cells_are_named_then_how_many_more():
    cells = [served(cell("gpt-4o", "iemocap", f"s{k}", 0.4, 0.7, 0.3), {"gpt-4o": {"a": 1, "b": 1}})
             for k in range(SHOWN_MIXED + 2)]
    said = mixed_cells(cells)
    assert said.count("gpt-4o iemocap") == SHOWN_MIXED and said.endswith("; and 2 more")


@pytest.mark.parametrize("bad", [[], "gpt-4o", {"gpt-4o": "s1"}, {"gpt-4o": {}},
                                 {"gpt-4o": {"s1": -1}}, {"gpt-4o": {"s1": 1.5}},
                                 {"gpt-4o": {"s1": None}}, {"gpt-4o": {"s1": float("nan")}}])
def test_a_record_whose_snapshots_are_not_counts_by_name_is_refused(bad):
    record = cell("gpt-4o", "iemocap", "base", 0.4, 0.7, 0.3)
    good = json.loads(json.dumps(served(record, {"gpt-4o": {"s1": 3}}).to_json()))
    assert CellRecord.from_json(good).meta["served_by"] == {"gpt-4o": {"s1": 3}}
    with pytest.raises(RecordError, match="'meta.served_by' is not an object of models"):
        CellRecord.from_json({**good, "meta": {**good["meta"], "served_by": bad}})
