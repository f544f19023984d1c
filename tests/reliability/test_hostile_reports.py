"""Cell files that are not cell records: each is named, the report is built from the good ones,
and the run says so with a non-zero exit."""

import json
import math
import os
import subprocess
import sys
import threading

import pytest

import harness
from harness.record import SCHEMA_VERSION, RecordError, write_record
from harness.report import build_report
from harness.report.compare import compare

BAD = {  # file name -> (content, what the reason must say)
    "list.json": ("[]", "a JSON list, not an object"),
    "empty.json": ("{}", "it has no 'schema_version'"),
    "no-cell.json": (json.dumps({"schema_version": SCHEMA_VERSION}), "'cell' is missing"),
    "truncated.json": ('{"schema_version": 1, "cell": "x", "met', "not a readable JSON file"),
    "deep.json": ("[" * 100_000, "not a readable JSON file: nested deeper than the JSON reader"),
    # a count (or any number) no float holds: float() raised OverflowError out of the report
    "huge.json": ('{"schema_version": 1, "metrics": {"n_items": 1%s}}' % ("0" * 400),
                  "not a readable JSON file: an integer of 401 digits, beyond a double's range"),
    "other-version.json": (json.dumps({"schema_version": SCHEMA_VERSION + 1, "cell": "y"}),
                           f"has schema version {SCHEMA_VERSION + 1}; this harness reads version"),
}


def good_record_json(meta=None, first_item=None, **changes) -> str:
    data = harness.evaluate("uniform", "crema_d", n_resamples=10).to_json()
    data["metrics"].update(changes)
    data["meta"].update(meta or {})
    data["items"][0].update(first_item or {})
    return json.dumps(data)


# Cell files that parse as JSON but are no record, by name: each one's content and what the
# report must say of it.
DAMAGED = dict(BAD)
DAMAGED["no-metric.json"] = (good_record_json(n_valid=None), "metric 'n_valid' is missing")
DAMAGED["string-metric.json"] = (good_record_json(js={"mean": "0.3", "ci95": [0, 1]}),
                                 "metric 'js' is not a mean (a finite number) with its ci95")
# found by fuzzing cell files: each one, read as a record, crashed the report's tables or
# figures instead of being left out
DAMAGED["dataset-number.json"] = (good_record_json(meta={"dataset": 7}),
                                  "'meta.dataset' is not an object")
DAMAGED["short-bins.json"] = (good_record_json(bins={"edges": [0, 1, 2], "counts": [3, 4],
                                                     "js": [0.1]}),
                              "'metrics.bins' is not edges, counts and a median per level")
DAMAGED["bin-interval-text.json"] = (good_record_json(bins={
    "edges": [0, 1, 2], "counts": [3, 4], "js": [0.1, 0.2], "js_ci": [[0.0, "x"], None]}),
    "'metrics.bins' is not edges, counts and a median per level")
DAMAGED["alpha-short-ci.json"] = (good_record_json(alpha_sensitivity={
    "mean": {"js": 0.5, "js_change_ci": [0.1]}}), "'metrics.alpha_sensitivity' is not numbers per")
DAMAGED["alpha-text.json"] = (good_record_json(alpha_sensitivity={"raw": "x"}),
                              "'metrics.alpha_sensitivity' is not numbers per")
DAMAGED["verifier-scores-text.json"] = (good_record_json(verifier={
    "scored": 3, "items": 1, "top_shared": 1, "all_equal": 0, "common": "0.9"}),
    "'metrics.verifier' is not counts of items")
DAMAGED["score-text.json"] = (good_record_json(first_item={"scores": {"js": "x"}}),
                              "'scores' is not numbers by metric")
DAMAGED["ci-text.json"] = (good_record_json(bc={"mean": 0.5, "ci95": ["0.4", 0.6]}),
                           "metric 'bc' is not a mean (a finite number) with its ci95")
DAMAGED["ci-one.json"] = (good_record_json(r2={"mean": 0.1, "ci95": [0.0]}),
                          "metric 'r2' is not a mean (a finite number) with its ci95")
# found by setting each number of a cell file to NaN, an infinity, -1, 2.5 (python -m
# bench.fuzz_files numbers): the first three crashed the report's report.json or items table
DAMAGED["count-nan.json"] = (good_record_json(n_items=math.nan),
                             "metric 'n_items' is missing or not a count (a whole number")
DAMAGED["mean-inf.json"] = (good_record_json(acc={"mean": math.inf, "ci95": [0.1, 0.2]}),
                            "metric 'acc' is not a mean (a finite number) with its ci95")
DAMAGED["dataset-items-inf.json"] = (
    good_record_json(meta={"dataset": {"options": {}, "n_items": -math.inf}}),
    "'meta.dataset' is not an object with 'options' (an object) and 'n_items' (a whole")
DAMAGED["count-fraction.json"] = (good_record_json(n_valid=2.5),
                                  "metric 'n_valid' is missing or not a count")
# found by python -m bench.fuzz_files records --seed 51: compare (and a gate) crashed on it
DAMAGED["prompts-text.json"] = (good_record_json(meta={"prompts": "paper v1"}),
                                "'meta.prompts' is neither an object nor null")
DAMAGED["model-list.json"] = (good_record_json(meta={"model": ["tiny"]}),
                              "'meta.model' is neither an object nor null")
# found by setting every field of a cell file to each of None, "x", [], {}, -1, 1e308 and
# true in turn: each crashed the report's ambiguity or alpha table
levels = "'metrics.bins' is not edges, counts and a median per level"
DAMAGED["bins-method-list.json"] = (good_record_json(bins={
    "method": [], "edges": [0, 1], "counts": [3], "js": [0.1], "bc": [0.5], "r2": [0.0]}), levels)
DAMAGED["bins-no-edges.json"] = (good_record_json(bins={
    "edges": [], "counts": [3], "js": [0.1], "bc": [0.5], "r2": [0.0]}), levels)
alpha = "'metrics.alpha_sensitivity' is not numbers per α"
DAMAGED["alpha-n-null.json"] = (good_record_json(alpha_sensitivity={
    "raw": {"js": 0.5}, "mean": {"js": 0.4, "js_change_ci": [-0.1, -0.05], "n": None}}), alpha)
DAMAGED["alpha-ci-number.json"] = (good_record_json(alpha_sensitivity={
    "raw": {"js": 0.5}, "mean": {"js": 0.4, "js_change_ci": -1, "n": 9}}), alpha)
DAMAGED["alpha-ci-half.json"] = (good_record_json(alpha_sensitivity={
    "raw": {"js": 0.5}, "mean": {"js": 0.4, "js_change_ci": [None, -0.05], "n": 9}}), alpha)


def test_bad_cell_files_are_named_and_the_good_ones_reported(tmp_path, record_property):
    run = tmp_path / "run"
    write_record(harness.evaluate("label-prior", "crema_d", n_resamples=10), run)
    cases = DAMAGED
    for name, (content, _) in cases.items():
        (run / "cells" / name).write_text(content)
    built = build_report(run)
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in built.bad_cells}
    assert set(reasons) == set(cases)
    for name, (_, says) in cases.items():
        assert name in reasons[name] and says in reasons[name], reasons[name]
    report = json.loads(built.path.read_text())
    assert [c["cell"] for c in report["cells"]] == ["label-prior-crema_d-base"]
    assert len(report["bad_cells"]) == len(cases)
    assert "label-prior" in (run / "tables.md").read_text()
    assert list(compare(run, run).changes) == ["label-prior-crema_d-base"]  # the bad ones left out
    assert not list(run.glob(".*.tmp"))  # every file written whole, no leftovers
    done = subprocess.run([sys.executable, "-m", "harness.report", str(run)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("bad cell file left out") == len(cases)
    record_property("reliability", f"hostile reports: {len(cases)} cell files that are not records "
                                   "named, the report built from the good one, exit code 1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_or_a_folder_among_the_cells_is_named_without_being_opened(tmp_path):
    """Opening a FIFO to read it waits for a writer for ever: the report would never be built.
    Each reader (the summary, the whole record, the items) refuses one by its kind."""
    from harness.record import read_items, read_record, read_summary

    run = tmp_path / "run"
    write_record(harness.evaluate("label-prior", "crema_d", n_resamples=10), run)
    cells = run / "cells"
    os.mkfifo(cells / "fifo.json")
    (cells / "folder.json").mkdir()
    items = cells / "label-prior-crema_d-base.items.jsonl"
    items.unlink()
    os.mkfifo(items)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(built=build_report(run)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the report waited on a FIFO"
    reasons = dict(outcome["built"].bad_cells)
    assert reasons == {str(cells / "fifo.json"): f"{cells / 'fifo.json'}: is a FIFO, not a regular file",
                       str(cells / "folder.json"): f"{cells / 'folder.json'}: is a directory, not a "
                                                   "regular file"}
    assert '"has_items": false' in (run / "report.html").read_text()
    for read in (read_summary, read_record, read_items):
        with pytest.raises(RecordError, match="fifo.json: is a FIFO, not a regular file"):
            read(cells / "fifo.json")
    with pytest.raises(RecordError, match="items.jsonl: is a FIFO, not a regular file"):
        read_items(items)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_given_to_a_merge_a_baseline_or_a_snapshot_check_is_named_not_waited_on(tmp_path):
    from harness.report.merge import merge_runs
    from harness.runner.baseline_file import BaselineError, read_baseline
    from harness.runner.snapshots import file_damage

    for run in ("a", "b"):
        (tmp_path / run / "cells").mkdir(parents=True)
        os.mkfifo(tmp_path / run / "cells" / "x.json")
    os.mkfifo(tmp_path / "baseline.json")
    outcome = {}

    def attempt():
        with pytest.raises(ValueError, match=r"cell x cannot be compared across runs \(.*a/cells/x.json, "
                                             r".*b/cells/x.json\): is a FIFO, not a regular file"):
            merge_runs(tmp_path / "merged", [tmp_path / "a", tmp_path / "b"])
        with pytest.raises(BaselineError, match="baseline.json: cannot be read \\(is a FIFO, not a "
                                                "regular file\\)"):
            read_baseline(tmp_path / "baseline.json")
        outcome["snapshot"] = file_damage(tmp_path / "baseline.json")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "a reader waited on a FIFO"
    assert outcome == {"snapshot": "cannot be read (is a FIFO, not a regular file)"}
    assert not (tmp_path / "merged").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_cell_in_one_run_of_a_merge_is_a_bad_cell_of_the_merged_report(tmp_path):
    """It cannot be copied: the merge names it as a report names a bad cell (report.json, the
    result, so an exit code of 1) and merges the rest."""
    from harness.report.merge import merge_runs
    from tests.helpers import returns_in_time

    write_record(harness.evaluate("label-prior", "crema_d", n_resamples=10), tmp_path / "a")
    (tmp_path / "b" / "cells").mkdir(parents=True)
    os.mkfifo(tmp_path / "b" / "cells" / "x.json")
    os.mkfifo(tmp_path / "b" / "cells" / "x.items.jsonl")
    built = returns_in_time(lambda: merge_runs(tmp_path / "merged", [tmp_path / "a", tmp_path / "b"]))
    fifo = tmp_path / "b" / "cells" / "x.json"
    assert built.bad_cells == ((str(fifo), f"{fifo}: is a FIFO, not a regular file"),)
    assert json.loads((tmp_path / "merged" / "report.json").read_text())["bad_cells"] == [
        {"path": str(fifo), "reason": f"{fifo}: is a FIFO, not a regular file"}]
    assert sorted(p.name for p in (tmp_path / "merged" / "cells").iterdir()) == [
        "label-prior-crema_d-base.items.jsonl", "label-prior-crema_d-base.json"]


def test_a_damaged_items_line_costs_its_item_on_the_page_not_the_cell_or_the_report(tmp_path):
    """Bytes that are not UTF-8, a line that is not an object, a number beyond JSON's range:
    the cell stays in the report, and on the page with its other items and the line named."""
    from harness.record import read_items

    run = tmp_path / "run"
    write_record(harness.evaluate("label-prior", "crema_d", n_resamples=10), run)
    items = run / "cells" / "label-prior-crema_d-base.items.jsonl"
    good = items.read_bytes()
    for damage, reading_says in ((b"\xff\xfe not text\n", "line 28: 'utf-8' codec can't decode"),
                                 (b"[1, 2]\n", "line 28: a JSON list, not an object"),
                                 (b'{"probs": [1e999]}\n', "line 28: 1e999 is beyond a double's range"),
                                 (b'{"n": 1%s}\n' % (b"0" * 400), "line 28: an integer of 401")):
        items.write_bytes(good + damage)
        built = build_report(run)
        page = (run / "report.html").read_text()
        assert not built.bad_cells and '"has_items": true' in page
        assert '"n_items_left_out": 1' in page and f"{items}, line 28: " in page
        _, lines = read_items(items)
        with pytest.raises(RecordError, match=reading_says):
            list(lines)
