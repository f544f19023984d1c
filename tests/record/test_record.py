"""What a record says about its failures."""

import numpy as np
import pytest

from harness.record import CellMetrics, CellRecord, ItemRecord, RecordError


def test_the_commonest_failure_is_named_for_the_assertion_message():
    down = "APIConnectionError: Connection refused"
    items = (ItemRecord("a", None, error=down), ItemRecord("b", None, error=down),
             ItemRecord("c", None, reason="no distribution in the answer"), ItemRecord("d", (1.0,)))
    record = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(4, 1, 0.25), 0.0, 0.0, items, {})
    assert record.commonest_failure() == f"2 of 4 items failed alike, the first with: {down} (1 other reason)"
    three = (*items, ItemRecord("e", None, error="HTTP 503"))
    record = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(5, 1, 0.2), 0.0, 0.0, three, {})
    assert record.commonest_failure().endswith(f"{down} (2 other reasons)")
    gone = tuple(ItemRecord(i, None, error=f"/data/AudioWAV/{i}.wav: audio file not found")
                 for i in ("1001_DFA_ANG_XX", "1001_IEO_SAD_HI", "1002_DFA_ANG_XX"))
    record = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(3, 0, 0.0), 0.0, 0.0, gone, {})
    assert record.commonest_failure() == ("3 of 3 items failed alike, the first with: "
                                          "/data/AudioWAV/1001_DFA_ANG_XX.wav: audio file not found")
    fine = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(1, 1, 1.0), 0.0, 0.0, items[3:], {})
    assert fine.commonest_failure() == ""


def test_a_summary_is_the_record_without_its_items_and_with_their_scores(tmp_path):
    import dataclasses
    import json

    import numpy as np

    from harness.record import read_record, read_summary, write_record
    from harness.runner.evaluate import evaluate

    record = evaluate("uniform", "crema_d", "base", n_resamples=10)
    path = write_record(record, tmp_path)
    summary, whole = read_summary(path), read_record(path)
    assert summary.items == () and whole == record
    with pytest.MonkeyPatch.context() as patch:  # the summary is read without the items
        patch.setattr("harness.record.files.read_record", lambda path: pytest.fail("read whole"))
        assert read_summary(path) == summary
    columns = record.score_columns()  # made once, then kept: neither it nor the evidence is
    assert record.score_columns() is columns  # part of what makes two records equal
    assert dataclasses.replace(record, evidence=None, columns=None) == record
    assert summary.to_json(items=False) == whole.to_json(items=False)
    got, expected = summary.score_columns(), whole.score_columns()
    assert got.ids == expected.ids == tuple(i.id for i in record.items)
    for metric, column in expected.values.items():
        np.testing.assert_array_equal(got.values[metric], column)
    # a file written another way (indented whole) and one cut short inside its items
    other = tmp_path / "other.json"
    other.write_text(json.dumps(record.to_json(), indent=1))
    assert read_summary(other) == record
    cut = tmp_path / "cut.json"
    cut.write_text(path.read_text()[:-200])
    with pytest.raises(RecordError, match="cut.json"):
        read_summary(cut)


def test_a_row_with_its_scores_is_the_row_replaced_field_for_field():
    import dataclasses

    row = ItemRecord("a", (0.5, 0.5), "json_dict", "left out 'x'", None, 12, ("resampled",),
                     "an answer", None, 0.75, 0.81)
    scores = {"js": 0.1, "bc": 0.9}
    values = {f.name: f"value of {f.name}" for f in dataclasses.fields(ItemRecord)}
    every_field_distinct = ItemRecord(**values)  # a field the method forgot would show here
    assert every_field_distinct.with_scores(scores) == dataclasses.replace(every_field_distinct,
                                                                           scores=scores)
    assert row.with_scores(scores) == dataclasses.replace(row, scores=scores)


def test_scores_pair_by_id_when_either_cell_has_no_items():
    """Found by fuzzing record files: an empty cell on either side crashed the pairing."""
    import math

    from harness.score_columns import METRICS, ScoreColumns

    def columns(ids, value):
        return ScoreColumns(tuple(ids), {m: np.full(len(ids), value) for m in METRICS})

    some, none = columns(["a", "b"], 0.5), columns([], 0.0)
    mine, theirs = some.matched(none, ["js"])
    assert mine.tolist() == [[0.5], [0.5]] and all(math.isnan(v) for v in theirs.ravel())
    mine, theirs = none.matched(some, ["js", "bc"])
    assert mine.shape == theirs.shape == (0, 2)
    mine, theirs = columns(["b", "c"], 0.25).matched(some, ["js"])
    assert theirs[0, 0] == 0.5 and math.isnan(theirs[1, 0])


def test_items_of_every_kind_read_back_as_written(tmp_path):
    """Item lines are written by orjson unless a number is not finite (NaN, which orjson would
    write as null) or orjson refuses the item (a lone surrogate): each reads back as it was."""
    import json
    import math

    from harness.record import read_record, write_record

    items = (ItemRecord("plain", (0.25, 0.75), "json_dict", scores={"js": 0.125, "r2": -3.5},
                        weight_max=0.5, weight_entropy=1.0),
             ItemRecord("nan-score", (0.5, 0.5), scores={"js": 0.0, "r2": math.nan}),
             ItemRecord("none-score", (0.5, 0.5), scores={"js": 0.0, "r2": None}),
             ItemRecord("inf-weight", (1.0, 0.0), weight_max=math.inf, weight_entropy=0.0),
             ItemRecord("surrogate", None, reason="no distribution in \ud800", answer="\udfff"),
             ItemRecord("Ärger \U0001f620", None, error="timeout", notes=("resampled",)))
    record = CellRecord("m-d-s", "m", "d", "s", ("x", "y"), CellMetrics(6, 4, 4 / 6), 0.0, 0.0,
                        items, {})
    back = read_record(write_record(record, tmp_path))

    def as_text(item):
        return json.dumps(item.to_json(), allow_nan=True)

    assert [as_text(i) for i in back.items] == [as_text(i) for i in items]


def test_a_copy_with_other_items_scores_those_items():
    """``dataclasses.replace`` carries the cached columns over: a copy with a subset of the
    items paired the whole set's scores (a strategy marked significant on 5 items by 10's)."""
    import dataclasses

    from harness.runner.evaluate import evaluate

    record = evaluate("uniform", "crema_d", "base", n_resamples=10)
    assert len(record.score_columns().ids) == len(record.items)
    fewer = dataclasses.replace(record, items=record.items[:5])
    assert fewer.score_columns().ids == tuple(i.id for i in record.items[:5])
    assert dataclasses.replace(record, meta={}).score_columns().ids == record.score_columns().ids


def test_a_cell_of_one_item_is_written_as_strict_json_with_no_interval(tmp_path):
    """Its intervals are NaN in memory, null in the file (the standard library would write the
    literal NaN, which strict JSON readers refuse), NaN again when read, "–" in the tables."""
    import json

    from harness.data import load_dataset
    from harness.record import read_record, read_summary, write_record
    from harness.report.build import build_report
    from harness.runner.evaluate import evaluate

    path = write_record(evaluate("uniform", load_dataset("crema_d")[:1], "base"), tmp_path)
    text = path.read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the record"))
    assert json.loads(text)["metrics"]["js"]["ci95"] == [None, None]
    for read in (read_record(path), read_summary(path)):
        assert np.isnan(read.metrics.scores["js"].ci95).all()
    built = build_report(tmp_path)
    assert "[–, –]" in (tmp_path / "tables.md").read_text()
    assert any(line.startswith("uniform") and "±" not in line for line in built.results)


def test_a_metric_name_that_is_none_is_refused_where_a_missing_mean_is_nan():
    metrics = CellMetrics(3, 0, 0.0)  # no valid item: no metric has a mean
    assert np.isnan(metrics.mean("js"))
    with pytest.raises(KeyError, match="unknown metric 'JS'; did you mean 'js'"):
        metrics.mean("JS")
    with pytest.raises(KeyError, match=r"unknown metric 'accuracy' \(known: js, jsd, bc, r2, acc, f1"):
        metrics.mean("accuracy")


def test_a_record_says_how_its_intervals_were_taken_and_an_older_one_reads_as_percentile(tmp_path):
    """The CIs' level (``harness.resampling.interval_level``) is kept with them; a record file
    written before there was a choice holds plain percentile intervals, and says so when read."""
    import json

    from harness.data import load_dataset
    from harness.record import read_record, read_summary, write_record
    from harness.runner.evaluate import evaluate

    items = load_dataset("crema_d")[:8]
    expanded = evaluate("uniform", items, "base")
    plain = evaluate("uniform", items, "base", interval="percentile")
    assert (expanded.metrics.interval, plain.metrics.interval) == ("expanded", "percentile")
    (low, high), (plain_low, plain_high) = (r.metrics.scores["js"].ci95 for r in (expanded, plain))
    assert low < plain_low and high > plain_high  # 8 items: the plain interval runs narrow
    path = write_record(expanded, tmp_path)
    assert read_record(path).metrics.interval == read_summary(path).metrics.interval == "expanded"
    data = json.loads(path.read_text())
    del data["metrics"]["interval"]
    path.write_text(json.dumps(data))
    assert read_record(path).metrics.interval == "percentile"
    assert read_record(path).metrics.n_resamples == expanded.metrics.n_resamples == 1000
    del data["metrics"]["n_resamples"]
    path.write_text(json.dumps(data))
    assert read_record(path).metrics.n_resamples is None  # written before it was kept
    data["metrics"]["interval"] = "bca"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="'metrics.interval' is not one of expanded, percentile"):
        read_record(path)
    with pytest.raises(ValueError, match="interval must be one of expanded, percentile, not 'bca'"):
        evaluate("uniform", items, "base", interval="bca")


def test_a_file_stem_is_the_name_made_safe_and_a_long_one_is_cut_with_a_hash_of_the_whole():
    from harness.record.files import file_stem

    assert file_stem("openai-compatible:org/model\\x\0y") == "openai-compatible_org_model_x_y"
    assert file_stem("x" * 200) == "x" * 200
    long = file_stem("x" * 201)
    assert long.startswith("x" * 180 + "-") and len(long) == 197
    assert file_stem("x" * 201 + "a") != file_stem("x" * 201 + "b")  # the same first 180
    wide = file_stem("é" * 101)  # 202 bytes: 180 of them end inside no character
    assert wide == "é" * 90 + "-" + wide[-16:] and len(wide.encode()) <= 255 - len(".items.jsonl")
    assert file_stem("é" * 100) == "é" * 100
    odd = file_stem("a" + "é" * 150)  # 180 bytes end inside the 90th 'é': it is left out whole
    assert odd == "a" + "é" * 89 + "-" + odd[-16:]


def test_a_summary_of_a_file_laid_out_otherwise_or_damaged_reads_whole_or_names_the_file(tmp_path):
    """A file with the items last and no score columns (another writer's layout) is read whole;
    a summary that is not a record names its file; two records share a folder."""
    import json

    from harness.record import read_summary, write_record
    from harness.record.files import _summary_text
    from harness.runner.evaluate import evaluate

    record = evaluate("uniform", "crema_d", "base", n_resamples=10)
    data = record.to_json()
    items = data.pop("items")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**data, "items": items}, indent=1))
    assert other.read_text().endswith("]\n}") and read_summary(other) == record
    path = write_record(record, tmp_path)
    assert write_record(record, tmp_path) == path  # the same folder again
    assert _summary_text(path, block=7) == _summary_text(path)
    path.write_text(path.read_text().replace('"n_items": ', '"n_items": "many", "was": ', 1))
    with pytest.raises(RecordError, match=f"^{path}: "):
        read_summary(path)


def test_a_record_s_parts_are_written_with_their_defaults_and_only_what_they_hold():
    assert CellMetrics(3, 2, 2 / 3).to_json() == {
        "n_items": 3, "n_valid": 2, "valid": 2 / 3, "interval": "expanded", "n_resamples": None,
        "rules": {},
        "errors": 0, "noted": 0, "no_transcript": 0, "verifier_unscored": 0, "bins": {},
        "tokens": 0, "cost_usd": None}
    counted = CellMetrics(3, 2, 2 / 3, n_scored=2, n_tied=1)
    assert CellMetrics.from_json(counted.to_json()) == counted
    assert ItemRecord("a", None).to_json() == {"id": "a", "probs": None, "rule": None, "reason": "",
                                               "error": None, "tokens": 0, "notes": []}
    said = ItemRecord("a", None, answer="")  # an empty answer is an answer
    assert said.to_json()["answer"] == "" and ItemRecord.from_json(said.to_json()) == said


USE = {"scored": 78, "items": 26, "top_shared": 4, "all_equal": 2, "common": [[0.9, 50], [0.8, 28]]}


def test_a_record_whose_interval_or_levels_are_not_the_schema_s_is_refused():
    from harness.runner.evaluate import evaluate

    data = evaluate("uniform", "crema_d", "base", n_resamples=10).to_json()
    for metrics, says in [({"interval": "bogus"}, "'metrics.interval' is not one of"),
                          ({"n_resamples": 0}, "'metrics.n_resamples' is not a whole number"),
                          ({"n_resamples": 1000.0}, "'metrics.n_resamples' is not a whole"),
                          ({"n_resamples": True}, "'metrics.n_resamples' is not a whole"),
                          ({"bins": {"edges": {"0": 1}, "counts": [1]}}, "'metrics.bins'"),
                          ({"bins": {"edges": [0, 1], "counts": "1"}}, "'metrics.bins'"),
                          ({"bins": {"edges": [0, 1], "counts": [1, 2]}}, "'metrics.bins'"),
                          ({"bins": {"edges": [0, 1], "counts": [1], "js": [0.1, 0.2]}}, "bins"),
                          ({"bins": {"edges": [0, 1], "counts": [1], "js_ci": [[0, 1, 2]]}}, "bins"),
                          ({"tokens": "7"}, "'metrics.tokens' or 'metrics.cost_usd'"),
                          ({"cost_usd": "0.1"}, "'metrics.tokens' or 'metrics.cost_usd'"),
                          ({"alpha_sensitivity": [1]}, "'metrics.alpha_sensitivity'"),
                          ({"alpha_sensitivity": {"raw": 0.3}}, "'metrics.alpha_sensitivity'"),
                          ({"alpha_sensitivity": {"raw": {"js": "x"}}}, "alpha_sensitivity"),
                          ({"alpha_sensitivity": {"mean": {"js_ci": [0]}}}, "alpha_sensitivity"),
                          ({"invalid": [1]}, "'metrics.invalid' is not numbers per reading"),
                          ({"invalid": {"uniform": {"n": -1}}}, "'metrics.invalid'"),
                          ({"invalid": {"uniform": {"js_ci": "x"}}}, "'metrics.invalid'"),
                          ({"invalid": {"uniform": {"js_ci": 2.5}}}, "'metrics.invalid'"),
                          ({"alpha_sensitivity": {"raw": {"js_ci": -1}}}, "alpha_sensitivity"),
                          ({"verifier": [1]}, "'metrics.verifier' is not counts"),
                          ({"verifier": {**USE, "items": "26"}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "top_shared": 27}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "all_equal": 5}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "common": [[0.9]]}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "common": [["0.9", 3]]}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "common": {"0.9": 3}}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "ties": [1]}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "weight_max": 1.5}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "weight_max": "0.4"}}, "'metrics.verifier'"),
                          ({"verifier": {**USE, "ties": {"first": {"js": "x"}}}}, "verifier"),
                          ({"verifier": {**USE, "ties": {"mean": {"js_change_ci": [0, None]}}}},
                           "verifier"),
                          ({"js": {"mean": 0.1, "ci95": [0.1, "x"]}}, "metric 'js' is not a mean")]:
        with pytest.raises(RecordError, match=says):
            CellRecord.from_json({**data, "metrics": {**data["metrics"], **metrics}})
    ties = {"first": {"n": 26, "js": 0.4}, "mean": {"n": 26, "js": 0.39, "js_change_ci": [-0.02, 0.0]}}
    fine = {"bins": {"edges": [0, 1], "counts": [1], "js": [None], "js_ci": [None]},
            "verifier": {**USE, "ties": ties, "weight_max": 0.44},
            "alpha_sensitivity": {"mean": {"js": None, "js_ci": [None, 0.1]}}, "cost_usd": 0,
            "invalid": {"left_out": {"n": 0}, "uniform": {"n": 6, "js": 0.5, "js_ci": None}}}
    read = CellRecord.from_json({**data, "metrics": {**data["metrics"], **fine}}).metrics
    assert read.cost_usd == 0 and read.invalid["uniform"]["n"] == 6
    with pytest.raises(RecordError, match="'meta' is not an object"):
        CellRecord.from_json({**data, "meta": ["x"]})


def test_a_record_that_is_no_record_is_refused_saying_what_it_is():
    import json

    from harness.record.cell import ItemEvidence
    from harness.runner.evaluate import evaluate

    data = evaluate("uniform", "crema_d", "base", n_resamples=10).to_json()
    cases = [([], "a JSON list, not an object"), ({**data, "cell": 3}, "'cell' is missing"),
             ({**data, "items": [{"id": 7, "probs": None}]}, "ValueError: an item's id is not"),
             ({**data, "meta": {"dataset": {"options": [1]}}}, "'meta.dataset' is not an object"),
             ({**data, "meta": {"dataset": {"n_items": "26"}}}, "'meta.dataset' is not an object"),
             ({**data, "labels": "x"}, "'labels' \\(a list\\) or 'metrics'"),
             ({**data, "metrics": {**data["metrics"], "bins": [1]}}, "'metrics.bins'"),
             ({**data, "items": [{"id": "a", "probs": None, "scores": {"js": "x"}}]},
              "item 'a': 'scores' is not numbers by metric"),
             ({**data, "items": [{"id": "a", "probs": None, "scores": [0.1]}]}, "'scores' is not"),
             ({**data, "items": [{"id": "a", "probs": ["0.5"]}]},
              "item 'a': 'probs' is not a list of numbers"),
             ({**data, "meta": {"strategy_config": [1]}}, "'meta.strategy_config' is not an object"),
             ({**data, "meta": {"prompts": "paper"}}, "'meta.prompts' is neither an object nor"),
             ({**data, "meta": {"model": ["x"]}}, "'meta.model' is neither an object nor null"),
             ({k: v for k, v in data.items() if k != "schema_version"},
              "not a cell record: it has no 'schema_version'")]
    for bad, says in cases:
        with pytest.raises(RecordError, match=says):
            CellRecord.from_json(bad)
    bare = {k: v for k, v in data.items() if k not in ("seconds", "gpu_seconds", "meta")}
    read = CellRecord.from_json(bare)
    assert (read.seconds, read.gpu_seconds, read.meta) == (0.0, 0.0, {})
    least = CellMetrics.from_json({"n_items": 1, "n_valid": 0, "valid": 0.0})
    assert (least.errors, least.noted, least.no_transcript, least.verifier_unscored, least.tokens,
            least.interval) == (0, 0, 0, 0, 0, "percentile")
    assert ItemRecord.from_json({"id": "a", "probs": None}) == ItemRecord("a", None)
    weighed = CellMetrics(1, 1, 1.0, alpha_sensitivity={"raw": {"js": 0.1, "n": 1}})
    assert CellMetrics.from_json(weighed.to_json()) == weighed
    verified = CellMetrics(1, 1, 1.0, verifier=USE)
    assert CellMetrics.from_json(verified.to_json()) == verified and not least.verifier
    assert "verifier" not in weighed.to_json()  # kept only where a verifier scored

    class Lines(list):
        def json_lines(self):
            return iter(['{"id": "a"}'])

    assert list(ItemEvidence({}, Lines([{"id": "b"}])).json_lines()) == ['{"id": "a"}']
    assert [json.loads(line) for line in ItemEvidence({}, [{"id": "b"}]).json_lines()] == [
        {"id": "b"}]  # plain items: each written as a line


def test_one_failed_item_is_not_said_to_fail_alike():
    import dataclasses

    items = (ItemRecord("a", None, error="HTTP 503"), ItemRecord("b", (1.0,)))
    record = CellRecord("m-d-s", "m", "d", "s", ("x",), CellMetrics(2, 1, 0.5), 0.0, 0.0, items, {})
    assert record.commonest_failure() == "1 of 2 items failed with: HTTP 503"
    long = dataclasses.replace(record, items=(ItemRecord("a", None, reason="x" * 400),))
    assert long.commonest_failure() == "1 of 1 items failed with: " + "x" * 300


def test_a_records_parts_are_frozen_and_a_row_knows_whether_its_numbers_are_finite():
    import dataclasses
    import math

    from harness.record.cell import Estimate, ItemEvidence

    row = ItemRecord("a", (0.5, 0.5), scores={"js": 0.1})
    parts = [(Estimate(0.1, (0.0, 0.2)), "mean"), (CellMetrics(1, 1, 1.0), "n_items"),
             (row, "probs"), (ItemEvidence({}, []), "header")]
    for part, name in parts:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, name, None)
    assert not hasattr(row, "__dict__")  # slots: a record holds one row per item
    assert row.all_finite() is True  # written by orjson, the faster
    assert not dataclasses.replace(row, scores={"js": math.nan}).all_finite()
    assert not dataclasses.replace(row, probs=(math.inf, 0.0)).all_finite()
