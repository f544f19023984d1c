"""Baselines and snapshots are committed with a project, so they meet merges, hand edits and
copies. A damaged one fails its cell's test naming the file and what is wrong (never a traceback
out of the gate, never a silent comparison with the wrong numbers), the cell's record is written
all the same, and labels recorded in another order are read by name."""

import json
import subprocess
import sys

from tests.pytest_plugin.grid_project import grid_project

NO_CACHE = ("-p", "no:cacheprovider")


def conflicted(ours: str, theirs: str) -> str:
    """Both sides of a merge of two versions of a file, as git leaves them (whole-file hunk)."""
    return f"<<<<<<< HEAD\n{ours}=======\n{theirs}>>>>>>> other\n"


def damage_baselines(folder) -> None:
    path = folder / "uniform-crema_d-base.json"
    text = path.read_text()
    path.write_text(conflicted(text, text.replace('"revision": null', '"revision": "x"')))
    path = folder / "uniform-iemocap-base.json"
    data = json.loads(path.read_text())
    data["items"][3]["probs"] = data["items"][3]["probs"][:2]
    path.write_text(json.dumps(data))
    path = folder / "label-prior-crema_d-base.json"  # a sound file, its labels in another order
    data = json.loads(path.read_text())
    data["labels"].reverse()
    for item in data["items"]:
        item["probs"].reverse()
    path.write_text(json.dumps(data))


def test_damaged_baselines_and_snapshots_fail_their_cells_naming_the_file(pytester, record_property):
    grid_project(pytester)
    pytester.runpytest_subprocess("--update-baselines", *NO_CACHE).assert_outcomes(passed=4)
    damage_baselines(pytester.path / "baselines")
    snapshot = pytester.path / "snapshots" / "test_grid" / "label-prior-iemocap-base.ambr"
    text = snapshot.read_text()
    snapshot.write_text(conflicted(text, text.replace("'js': ", "'js': 0")))
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines_random([
        "uniform-crema_d-base: its baseline cannot be used: *uniform-crema_d-base.json: holds a "
        "merge's conflict markers (line 1); resolve the conflict, or record it again with "
        "--update-baselines",
        "uniform-iemocap-base: its baseline cannot be used: *uniform-iemocap-base.json: item '*' "
        "has a prediction of 2 values for 4 labels; *",
        "*label-prior-iemocap-base.ambr: holds a merge's conflict markers (line 1); *"])
    assert "Traceback" not in result.stdout.str() and "Error" not in result.stdout.str()
    [_, run] = sorted((pytester.path / "reports").iterdir())  # the recording run, then this one
    cells = {p.stem: json.loads(p.read_text()) for p in (run / "cells").glob("*.json")}
    assert len(cells) == 4  # every record written, the damaged ones' included
    regression = {cell: record["meta"]["regression"] for cell, record in cells.items()}
    assert regression["uniform-crema_d-base"]["gate"].startswith("baseline unusable: ")
    assert regression["label-prior-iemocap-base"]["snapshot"].startswith("snapshot file unusable: ")
    # read by label name: the same predictions, so no change at all (misread by position, the
    # reversed prior would have made the run look better than its baseline)
    assert "not significantly different on" in regression["label-prior-crema_d-base"]["gate"]
    compare = subprocess.run([sys.executable, "-m", "harness.report", "compare",
                              pytester.path / "baselines", run], capture_output=True, text=True)
    assert compare.returncode == 2 and "uniform-crema_d-base.json: holds a merge's conflict" \
        in compare.stderr and "Traceback" not in compare.stderr
    record_property("reliability", "hostile baselines: 2 damaged baselines and 1 damaged snapshot "
                                   "(merge conflicts, a cut prediction) failed their cells naming "
                                   "the file, 1 baseline with reordered labels read by name, "
                                   "records lost 0, tracebacks 0")
