"""``python -m harness.report compare`` and ``merge``."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from harness.record import CellMetrics, CellRecord, ItemRecord, write_record
from harness.report.stopped import clear_running, mark_running, mark_stopped
from harness.runner.baseline_file import item_scores, save_baseline

VOTES = {f"i{k}": np.eye(3)[k % 3] * 4 + 1 for k in range(40)}


def record(cell, probs_for, only=None):
    """A cell whose items answer ``probs_for(votes)``; given ``only``, those items alone, the
    others their own distribution."""
    probs = {i: probs_for(v) if only is None or i in only else v / v.sum() for i, v in VOTES.items()}
    scores = item_scores(probs, VOTES)
    items = tuple(ItemRecord(i, tuple(p.tolist()), scores=scores[i]) for i, p in probs.items())
    return CellRecord(cell, "m", "d", "s", ("a", "b", "c"), CellMetrics(40, 40, 1.0), 0.0, 0.0, items,
                      {"model": {"revision": "r1"}})


def report(*args):
    return subprocess.run([sys.executable, "-m", "harness.report", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_compare_prints_paired_changes_and_fails_only_when_worse(tmp_path):
    good, vague = (lambda v: v / v.sum()), (lambda v: np.full(3, 1 / 3))
    for run, first, few in (("a", good, ()), ("b", vague, ("i0", "i1", "i2"))):
        write_record(record("m-d-s", first), tmp_path / run)
        write_record(record("m-d-t", vague), tmp_path / run)
        write_record(record("m-d-u", vague, only=few), tmp_path / run)  # 3 items changed
    result = report("compare", tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1, result.stderr
    assert "\n\n3 cells in both; per metric" in result.stdout
    assert "| m-d-s | js | 0.0000 |" in result.stdout and "**worse** |" in result.stdout
    assert re.search(r"\| m-d-t \| js \|.*\| 40 \(0 changed\) \| unchanged \|", result.stdout), result.stdout
    assert re.search(r"\| m-d-u \| js \|.*\| 40 \(3 changed\) \| not significant \|", result.stdout)
    assert "significantly worse: m-d-s" in result.stdout and "40 |" in result.stdout
    result = report("compare", tmp_path / "b", tmp_path / "a")  # the other way round: better
    assert result.returncode == 0 and "no cell is significantly worse" in result.stdout
    assert "stopped" not in result.stdout
    mark_stopped(tmp_path / "a", "stopping after 1 failures", (3, 5))
    result = report("compare", tmp_path / "b", tmp_path / "a")
    assert result.stdout.endswith("\n\nB stopped before every selected cell ran (stopping after 1 "
                                  "failures): the cells it did not reach are in neither the table "
                                  "nor the count\n")
    (tmp_path / "a" / "stopped.json").unlink()
    mark_running(tmp_path / "a", 5, os.getpid())  # a run still going: its cells so far
    result = report("compare", tmp_path / "b", tmp_path / "a")
    assert result.stdout.endswith(f"\n\nB had not ended (still running: process {os.getpid()} on "
                                  "this host): the cells it did not reach are in neither the "
                                  "table nor the count\n")
    clear_running(tmp_path / "a")
    save_baseline(record("m-d-s", good), tmp_path / "baselines", VOTES)  # a baselines folder
    result = report("compare", tmp_path / "baselines", tmp_path / "b")
    assert result.returncode == 1 and "\n\n1 cell in both; per metric" in result.stdout
    assert report("compare", tmp_path / "baselines", tmp_path / "a").returncode == 0
    result = report("compare", tmp_path / "nothing", tmp_path / "a")
    assert result.returncode == 2 and "neither a run folder" in result.stderr
    result = report("compare", tmp_path / "baselines", tmp_path)  # the folder of runs a and b
    assert result.returncode == 2 and result.stderr.rstrip().endswith(
        f"it holds runs (a, b): give one, e.g. {tmp_path / 'b'}")
    (tmp_path / "baselines" / "m-d-t.json").write_text('{"cell": "m-d-t", "labels": ["a"], '
                                                         '"items": [1, 2]}')
    result = report("compare", tmp_path / "baselines", tmp_path / "a")
    assert result.returncode == 2 and "m-d-t.json: item 0 is not an object with an id" in result.stderr


def test_two_models_of_one_run_compare_cell_by_cell(tmp_path):
    """A fine-tune against its original: each corpus and strategy of one model paired with the
    other's, in one run folder."""
    good, vague = (lambda v: v / v.sum()), (lambda v: np.full(3, 1 / 3))
    for model, probs in (("base-model", vague), ("base-model-ft", good)):
        for cell in (f"{model}-d-s", f"{model}-d-t"):
            write_record(dataclasses.replace(record(cell, probs), model=model), tmp_path / "run")
    result = report("compare", tmp_path / "run", tmp_path / "run", "--models", "base-model",
                    "base-model-ft")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {tmp_path / 'run'} (base-model) -> {tmp_path / 'run'} "
                                    "(base-model-ft)\n\n2 corpus-strategy cells of both models;")
    assert "| d-s | js |" in result.stdout and "| d-t | js |" in result.stdout
    assert "better |" in result.stdout and '- d-s: model "base-model" -> "base-model-ft"' in result.stdout
    back = report("compare", tmp_path / "run", tmp_path / "run", "--models", "base-model-ft",
                  "base-model")
    assert back.returncode == 1 and "significantly worse: d-s, d-t" in back.stdout
    missing = report("compare", tmp_path / "run", tmp_path / "run", "--models", "nope", "base-model")
    assert missing.returncode == 2 and "holds no cell of the model 'nope'" in missing.stderr


def test_compare_fails_a_cell_with_nothing_scored_in_both_and_refuses_runs_sharing_no_cell(tmp_path):
    good = lambda v: v / v.sum()  # noqa: E731
    write_record(record("m-d-s", good), tmp_path / "a")
    failed = record("m-d-s", good)  # every item failed: no prediction, no score
    failed = CellRecord(failed.cell, "m", "d", "s", failed.labels, CellMetrics(40, 0, 0.0), 0.0, 0.0,
                        tuple(ItemRecord(i.id, None) for i in failed.items), failed.meta)
    write_record(failed, tmp_path / "b")
    result = report("compare", tmp_path / "a", tmp_path / "b")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "| m-d-s | – | | | | | fewer than 2 | **not compared** |" in result.stdout
    assert "not compared, B scored fewer than 2 of the items A scored and B holds: m-d-s" \
        in result.stdout
    other = record("m-d-s", good)  # the same cell on another item set: nothing to pair, no failure
    write_record(CellRecord(other.cell, "m", "d", "s", other.labels, other.metrics, 0.0, 0.0,
                            tuple(ItemRecord("x" + i.id, i.probs, scores=i.scores) for i in other.items),
                            other.meta), tmp_path / "subset")
    assert report("compare", tmp_path / "a", tmp_path / "subset").returncode == 0
    write_record(record("m-d-other", good), tmp_path / "c")
    result = report("compare", tmp_path / "a", tmp_path / "c")
    assert result.returncode == 2
    assert "no cell is in both" in result.stderr and "(m-d-s)" in result.stderr
    assert "(m-d-other)" in result.stderr and "nothing to compare" in result.stderr
    result = report("compare", tmp_path / "a", tmp_path / "a", "--resamples", "0")
    assert result.returncode == 2 and "must be a whole number of at least 1, not '0'" in result.stderr

def test_two_failed_items_held_by_b_fail_the_cell_and_one_is_nothing_to_pair(tmp_path):
    """B holding two of A's scored items, both failed, is a cell not compared (None, a failure);
    holding one, there was nothing to pair on (no rows, no failure)."""
    from harness.report.compare import compare

    good = lambda v: v / v.sum()  # noqa: E731
    whole = record("m-d-s", good)
    write_record(whole, tmp_path / "a")
    for held, verdict in ((2, None), (1, [])):
        failed = tuple(ItemRecord(i.id, None) for i in whole.items[:held])
        write_record(CellRecord(whole.cell, "m", "d", "s", whole.labels, CellMetrics(held, 0, 0.0),
                                0.0, 0.0, failed, whole.meta), tmp_path / f"b{held}")
        assert compare(tmp_path / "a", tmp_path / f"b{held}", n_resamples=10).changes == {
            "m-d-s": verdict}, held


def test_compare_names_the_inputs_that_differ(tmp_path):
    good = record("m-d-s", lambda v: v / v.sum())
    write_record(good, tmp_path / "a")
    write_record(dataclasses.replace(good, meta={"model": {"revision": "r2", "dtype": "bfloat16"}}),
                 tmp_path / "b")
    result = report("compare", tmp_path / "a", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert ("B's inputs unlike A's (the model revision included):\n"
            '- m-d-s: dtype null -> "bfloat16", revision "r1" -> "r2"\n') in result.stdout
    assert "inputs unlike" not in report("compare", tmp_path / "a", tmp_path / "a").stdout


def test_merged_shards_give_the_report_of_one_run(tmp_path):
    whole = tmp_path / "whole"
    cells = [record(f"m-d-{s}", lambda v, k=k: (v + k) / (v + k).sum()) for k, s in enumerate("stuv")]
    for c in cells:
        write_record(c, whole)
    assert report(whole).returncode == 0
    for n, part in enumerate((cells[:3], cells[3:])):  # as two machines would have written them
        for c in part:
            write_record(c, tmp_path / f"shard{n}")
    out = tmp_path / "merged" / "shards" / "0-1"  # --out's folders are made as needed
    result = report("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", out)
    assert result.returncode == 0, result.stderr
    for table in sorted(p.name for p in whole.iterdir() if p.suffix in (".md", ".csv", ".tex")):
        assert (out / table).read_bytes() == (whole / table).read_bytes(), table
    merged = json.loads((out / "report.json").read_text())
    assert merged["cells"] == json.loads((whole / "report.json").read_text())["cells"]
    shutil.copy(tmp_path / "shard0" / "cells" / "m-d-s.json", tmp_path / "shard1" / "cells" / "m-d-s.json")
    write_record(record("m-d-s", lambda v: np.full(3, 1 / 3)), tmp_path / "shard1")  # a conflict
    result = report("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "again")
    assert result.returncode == 2 and "cell m-d-s is in two runs with different results" in result.stderr
    assert not (tmp_path / "again").exists()


def test_a_cell_run_again_elsewhere_is_merged_once_and_said(tmp_path):
    first = record("m-d-s", lambda v: v / v.sum())
    write_record(first, tmp_path / "shard0")
    write_record(record("m-d-t", lambda v: np.full(3, 1 / 3)), tmp_path / "shard0")
    run_again = {"model": {"revision": "r1", "device": "cuda:1"}, "host": "node7", "git_commit": "c0",
                 "finished": "2026-12-02T00:00:00+0000", "versions": {"torch": "2.11"},
                 "generations": {"computed": 0, "from_cache": 40}}  # a rerun reads its cache
    first = dataclasses.replace(first, meta={**first.meta, "plan": {"seconds": 1.0, "strategies": ["s"]}})
    run_again["plan"] = {"seconds": 0.2, "strategies": ["s"]}
    write_record(first, tmp_path / "shard0")
    write_record(dataclasses.replace(first, seconds=9.5, gpu_seconds=3.0, meta=run_again),
                 tmp_path / "shard1")
    result = report("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "merged")
    assert result.returncode == 0, result.stderr
    assert f"note: cell m-d-s is in {tmp_path / 'shard0'} and {tmp_path / 'shard1'} with the same " \
           f"results: the record of {tmp_path / 'shard0'} is kept" in result.stderr
    kept = tmp_path / "merged" / "cells" / "m-d-s.json"
    assert kept.read_bytes() == (tmp_path / "shard0" / "cells" / "m-d-s.json").read_bytes()
    assert len(json.loads((tmp_path / "merged" / "report.json").read_text())["cells"]) == 2
    (tmp_path / "shard1" / "cells" / "m-d-s.items.jsonl").write_text("{}\n")  # other evidence
    other_model = {**run_again, "model": {"revision": "r2"}}  # what it ran decides its results
    for shard1 in (tmp_path / "shard1", write_record(dataclasses.replace(first, meta=other_model),
                                                     tmp_path / "shard2").parent.parent):
        result = report("merge", tmp_path / "shard0", shard1, "--out", tmp_path / "again")
        assert result.returncode == 2, result.stderr
        assert "cell m-d-s is in two runs with different results" in result.stderr
        assert not (tmp_path / "again").exists()


def test_view_prints_the_page_and_builds_it_when_missing(tmp_path):
    write_record(record("m-d-s", lambda v: v / v.sum()), tmp_path / "run")
    result = report("view", tmp_path / "run", "--no-open")
    page = (tmp_path / "run" / "report.html").resolve()
    assert result.returncode == 0 and result.stdout.strip() == str(page)
    assert (tmp_path / "run" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert report("view", tmp_path / "nothing", "--no-open").returncode == 2


def test_a_report_folder_given_for_a_run_is_answered_with_its_runs(tmp_path):
    for run in ("20261130-101010-1", "20261130-121212-2"):
        write_record(record("m-d-s", lambda v: v / v.sum()), tmp_path / "reports" / run)
    (tmp_path / "reports" / "notes").mkdir()
    for args in ([tmp_path / "reports"], ["view", tmp_path / "reports", "--no-open"]):
        result = report(*args)
        assert result.returncode == 2
        assert "holds runs (20261130-101010-1, 20261130-121212-2)" in result.stderr
        assert f"python -m harness.report {tmp_path / 'reports' / '20261130-121212-2'}" in result.stderr
    empty = report(tmp_path / "reports" / "notes")
    assert empty.returncode == 2 and "holds runs" not in empty.stderr


def test_compare_counts_the_items_that_changed_and_needs_seven_of_them(tmp_path):
    """5 of 40 items worse, the rest as they were: not worse, the table saying how many changed
    (the plain intervals, the rule as it was, call it worse); 9 of 40: worse."""
    for moved in (5, 9):
        write_record(record("m-d-s", lambda v: v / v.sum()), tmp_path / f"a{moved}")
        changed = record("m-d-s", lambda v: v / v.sum())
        items = list(changed.items)
        for k in range(moved):
            vague = {items[k].id: np.full(3, 1 / 3)}
            scores = item_scores(vague, {items[k].id: VOTES[items[k].id]})[items[k].id]
            items[k] = ItemRecord(items[k].id, (1 / 3,) * 3, scores=scores)
        write_record(dataclasses.replace(changed, items=tuple(items)), tmp_path / f"b{moved}")
        result = report("compare", tmp_path / f"a{moved}", tmp_path / f"b{moved}")
        assert f"| 40 ({moved} changed) | " in result.stdout
        assert result.returncode == (1 if moved == 9 else 0), result.stdout
        assert "sign-flip test agrees over 7 or more items that changed" in result.stdout
    plain = report("compare", tmp_path / "a5", tmp_path / "b5", "--interval", "percentile")
    assert plain.returncode == 1 and "significantly worse: m-d-s" in plain.stdout


def test_compare_takes_expanded_intervals_unless_told_and_says_which(tmp_path):
    """A null update of 8 items (bench.gate_null's first draw with seed 36) that the plain
    percentile intervals, narrow on so few, call worse; the expanded ones (the default) do not."""
    from bench.gate_null import null_updates

    old, new = next(null_updates(1, 8, seed=36))
    for run, scores in (("a", old), ("b", new)):
        items = tuple(ItemRecord(i, (1 / 3,) * 3, scores=s) for i, s in scores.items())
        write_record(CellRecord("m-d-s", "m", "d", "s", ("a", "b", "c"), CellMetrics(8, 8, 1.0),
                                0.0, 0.0, items, {}), tmp_path / run)
    result = report("compare", tmp_path / "a", tmp_path / "b")
    assert result.returncode == 0 and "no cell is significantly worse" in result.stdout
    assert "Intervals: expanded percentile bootstrap (as wide as Student's t" in result.stdout
    result = report("compare", tmp_path / "a", tmp_path / "b", "--interval", "percentile")
    assert result.returncode == 1 and "significantly worse: m-d-s" in result.stdout
    assert "Intervals: plain percentile bootstrap (--interval)." in result.stdout


def test_a_cell_whose_name_holds_a_bar_keeps_its_row_whole(tmp_path):
    from harness.report.compare import compare, markdown

    for run in ("a", "b"):
        write_record(record("m|x-d-s", lambda v: v / v.sum()), tmp_path / run)
    text = markdown(tmp_path / "a", tmp_path / "b", compare(tmp_path / "a", tmp_path / "b",
                                                            n_resamples=50))
    rows = [line for line in text.splitlines() if line.startswith("| m")]
    assert rows and all(row.startswith("| m\\|x-d-s | ") for row in rows)
    assert all(row.replace("\\|", "").count("|") == 9 for row in rows)


def test_a_model_s_cells_are_its_own_not_those_of_a_model_whose_name_starts_alike(tmp_path):
    from harness.report.compare import CompareError, Side, _of_model

    def side(model):
        return Side({}, frozenset(), {"model": model} if model else {})

    cells = {"m-d-s": side("m"), "m-ft-d-s": side("m-ft"), "m-d-t": side(None), "x-d-s": side("x")}
    assert sorted(_of_model(cells, "m", tmp_path)) == ["d-s", "d-t"]
    many = {f"c{k}-d-s": side(f"c{k}") for k in range(5)}
    with pytest.raises(CompareError) as caught:
        _of_model(many, "m", tmp_path)
    from harness.report.compare import item_scores_of

    write_record(record("m-d-s", lambda v: v / v.sum()), tmp_path / "run")
    assert list(item_scores_of(str(tmp_path / "run"))) == ["m-d-s"]  # a folder given as text
    assert str(caught.value).endswith(
        "holds no cell of the model 'm' (c0-d-s, c1-d-s, c2-d-s and 2 more)")
    assert "(c0-d-s, c1-d-s, c2-d-s)" in _few_of(3)
    assert _few_of(4) == "(c0-d-s, c1-d-s, c2-d-s and 1 more)" and _few_of(0) == "(no cell)"


def _few_of(n):
    from harness.report.compare import Side, _few

    return "(" + _few({f"c{k}-d-s": Side({}, frozenset(), {}) for k in range(n)}) + ")"


def test_compare_s_text_gives_the_level_and_each_row_a_b_and_b_minus_a(tmp_path):
    from harness.report.compare import compare, markdown
    from harness.runner.gating import percent

    good, vague = (lambda v: v / v.sum()), (lambda v: np.full(3, 1 / 3))
    for run, probs in (("a", good), ("b", vague)):
        write_record(record("m-d-s", probs), tmp_path / run)
    found = compare(tmp_path / "a", tmp_path / "b", n_resamples=50)
    text = markdown(tmp_path / "a", tmp_path / "b", found)
    [level] = {c.confidence for c in found.changes["m-d-s"]}
    assert f"hold together at 95% (Bonferroni: {percent(level)} each)" in text
    assert "at most 5% of the time" in text and f"| B − A | {percent(level)} CI | items |" in text
    for c in found.changes["m-d-s"]:  # each row: A, B and B − A
        assert (f"| m-d-s | {c.metric} | {c.before:.4f} | {c.after:.4f} | "
                f"{c.after - c.before:+.4f} | [") in text
    assert any(c.after != c.before for c in found.changes["m-d-s"])


def test_merge_refuses_a_folder_that_is_no_run_and_reads_a_record_s_keys_in_any_order(tmp_path):
    from harness.report.merge import merge_runs, same_results

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: not a run folder .it has no cells/."):
        merge_runs(tmp_path / "out", [tmp_path / "empty"])
    assert not (tmp_path / "out").exists()
    path = write_record(record("m-d-s", lambda v: v / v.sum()), tmp_path / "a")
    data = json.loads(path.read_text())
    other = tmp_path / "b.json"
    other.write_text(json.dumps({k: data[k] for k in reversed(list(data))} | {"seconds": 9.0}))
    assert same_results(path, other)
    for text in ("[]", "[" * 100_000):
        other.write_text(text)
        assert not same_results(path, other)


def test_a_cell_copied_whole_into_two_shards_is_merged_once_and_again_into_the_same_folder(tmp_path):
    from harness.report.merge import merge_runs

    path = write_record(record("m-d-s", lambda v: v / v.sum()), tmp_path / "shard0")
    (tmp_path / "shard1" / "cells").mkdir(parents=True)
    shutil.copy(path, tmp_path / "shard1" / "cells" / path.name)  # the same bytes
    for _ in range(2):  # the second time into a folder the first made
        built = merge_runs(str(tmp_path / "out"), [tmp_path / "shard0", tmp_path / "shard1"])
        assert built.notes == (f"cell m-d-s is in {tmp_path / 'shard0'} and {tmp_path / 'shard1'} "
                               f"with the same results: the record of {tmp_path / 'shard0'} is kept",)
    assert (tmp_path / "out" / "cells" / path.name).read_bytes() == path.read_bytes()


def test_compare_says_how_many_cells_chance_alone_would_call_worse():
    """Each cell is held to --gate-alpha alone: over many cells, the last line says what chance
    gives and the level that holds them all together."""
    from pathlib import Path

    from harness.report.compare import Comparison, markdown

    def last(cells, alpha=0.05):
        comparison = Comparison({f"m-d-s{k}": None for k in range(cells)}, {}, alpha, "expanded")
        return next(line for line in markdown(Path("a"), Path("b"), comparison).splitlines()
                    if line.startswith("no cell"))

    assert last(40) == ("no cell is significantly worse (0 of 40 cells; were nothing changed, up "
                        "to about 2 would be called worse by chance, each held to 5% alone: "
                        "--gate-alpha 0.00125 holds all 40 to 5% together)")
    assert last(189).endswith("up to about 9 would be called worse by chance, each held to 5% "
                              "alone: --gate-alpha 0.000264 holds all 189 to 5% together)")
    assert last(9) == "no cell is significantly worse"  # chance gives fewer than one in two
    assert last(40, alpha=0.05 / 40) == "no cell is significantly worse"  # already held together
