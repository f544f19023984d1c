"""End-to-end tests of the grid plugin with pytester: ids, selection, workers, gating, snapshots."""

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from harness._env import usable_cores
from harness.report.build import build_report
from tests.pytest_plugin.grid_project import grid_project


@pytest.fixture
def grid_dir(pytester):
    return lambda extra="", conftest="": grid_project(pytester, extra, conftest)


def run_dirs(pytester):
    return sorted((pytester.path / "reports").iterdir())


def test_ids_and_k_selection(grid_dir):
    pytester = grid_dir()
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_cell[[]uniform-crema_d-base[]]*",
                                 "*test_cell[[]label-prior-iemocap-base[]]*", "*4 tests collected*"])
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-k", "label-prior and crema_d")
    result.stdout.fnmatch_lines(["*1/4 tests collected (3 deselected)*"])
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--models", "uniform")
    result.stdout.fnmatch_lines(["*2 tests collected*"])


def test_two_workers_write_one_report(grid_dir):
    pytester = grid_dir()
    result = pytester.runpytest_subprocess("-n", "2", "--snapshot-update", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    [run] = run_dirs(pytester)
    report = json.loads((run / "report.json").read_text())
    assert sorted(c["cell"] for c in report["cells"]) == [
        "label-prior-crema_d-base", "label-prior-iemocap-base", "uniform-crema_d-base",
        "uniform-iemocap-base"]
    assert "items" not in report["cells"][0] and (run / "cells" / "uniform-crema_d-base.json").is_file()
    assert not (run / "running.json").exists()  # the session's end removed it
    tables = (run / "tables.md").read_text()
    main = tables.split("## main")[1].split("## strategies")[0]
    assert "| Model | iemocap JS | iemocap BC |" in main and "**" not in main  # baselines: unranked
    said = " ".join(tables.split("## items")[0].split())  # what the tables compare with, above
    assert said.startswith("Items: crema_d 26 items") and "ties to the first label" in said
    assert (run / "main.tex").read_text().startswith("\\begin{tabular}")
    result.stdout.fnmatch_lines(["*harness results*", "Items: crema_d * items*",
                                 "model * dataset * strategy * valid * JS * BC * R² * paired * acc",
                                 "label-prior * crema_d * base * */* 0.*",
                                 "*harness report: reports/*/report.json*"])
    quiet = pytester.runpytest_subprocess("-n", "2", "-q", "-p", "no:cacheprovider",
                                          "--junitxml", "junit.xml")
    assert "harness results" not in quiet.stdout.str()  # -q: the report's path alone
    quiet.stdout.fnmatch_lines(["*harness report: reports/*/report.json*"])
    # a CI's test view links each cell's case to its record and says what its snapshot found
    import xml.etree.ElementTree as ET

    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    found = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in cases}
    assert len(found) == 4 and all(Path(f["harness_cell"]).is_file() for f in found.values())
    assert Path(found["test_cell[uniform-iemocap-base]"]["harness_cell"]).name == (
        "uniform-iemocap-base.json")
    assert {f["harness_snapshot"].split(" ")[0] for f in found.values()} == {"matched"}
    for name in ("report.json", "tables.md", "main.csv", "main.tex"):
        (run / name).unlink()
    import subprocess
    import sys

    rebuilt = subprocess.run([sys.executable, "-m", "harness.report", str(run)],
                             capture_output=True, text=True)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads((run / "report.json").read_text()) == report
    assert (run / "tables.md").read_text() == tables


def test_unavailable_pieces_skip_with_what_to_set(grid_dir, monkeypatch):
    monkeypatch.setenv("IEMOCAP_ROOT", "/nonexistent/iemocap")
    pytester = grid_dir(extra=", limit=5")
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider", "--snapshot-update")
    result.stdout.fnmatch_lines(["*iemocap*root folder not found*set IEMOCAP_ROOT*"])


def test_a_crashed_worker_loses_no_finished_cell(grid_dir):
    conftest = """
    import os
    from harness.models import register
    from harness.models.api import ModelInfo

    class Killer:
        info = ModelInfo("killer", "test")
        def generate(self, requests, decoding):
            os._exit(3)  # the worker dies in the middle of this cell

    @register("killer")
    def killer(**config):
        return Killer()
    """
    pytester = grid_dir(extra=', strategies=("base",)', conftest=conftest)
    test_file = pytester.path / "test_grid.py"
    test_file.write_text(test_file.read_text().replace(
        'models=("uniform", "label-prior")', 'models=("uniform", "killer")'))
    result = pytester.runpytest_subprocess("-n", "2", "--snapshot-update", "-p", "no:cacheprovider")
    assert result.ret != 0
    [run] = run_dirs(pytester)
    cells = {c["cell"] for c in json.loads((run / "report.json").read_text())["cells"]}
    assert {"uniform-crema_d-base", "uniform-iemocap-base"} <= cells
    assert not any(c.startswith("killer") for c in cells)
    assert not (run / "stopped.json").exists()  # each crashed worker replaced: every cell ran
    result = pytester.runpytest_subprocess("-n", "2", "--max-worker-restart", "0",
                                           "-p", "no:cacheprovider")
    [_, run] = run_dirs(pytester)  # no worker replaced: the run ends at the first crash
    stop = json.loads((run / "report.json").read_text())["stopped"]
    assert stop["reason"].startswith("it ended before its last test ran")
    assert stop["tests_finished"] < stop["tests_selected"] == 4


def test_a_project_without_grid_cells_keeps_its_environment(pytester, monkeypatch):
    """The plugin is loaded into every pytest session where the package is installed: with no
    grid cells it pins no GPU and writes no environment variable or folder."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("HARNESS_GPUS", raising=False)
    pytester.makepyfile(test_plain="""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_sees(n):
            with open(f"seen-{n}.txt", "w") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + " " + os.environ["CUDA_VISIBLE_DEVICES"])
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    seen = dict(p.read_text().split() for p in pytester.path.glob("seen-*.txt"))
    assert seen == {"gw0": "0,1", "gw1": "0,1"}
    assert not (pytester.path / "reports").exists()


def test_a_strategy_registered_outside_the_package_runs_in_the_grid(grid_dir):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    conftest = """
    import numpy as np
    from harness.strategies import Strategy, register

    @register
    class Shrunk(Strategy):
        \"\"\"The greedy answer pulled halfway to uniform.\"\"\"
        name = "shrunk"

        def combine(self, usable, config):
            probs = np.asarray(usable[0]["probs"])
            return 0.5 * probs + 0.5 / len(probs), usable[0]
    """
    pytester = grid_dir(extra=', strategies=("base", "shrunk")', conftest=conftest)
    test_file = pytester.path / "test_grid.py"
    test_file.write_text(test_file.read_text().replace(
        'models=("uniform", "label-prior"), datasets=("crema_d", "iemocap")',
        'models=("tiny-qwen2-audio",), datasets=("crema_d",)').replace("valid_min=1.0", "valid_min=0.5"))
    result = pytester.runpytest_subprocess("--snapshot-update", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_cell[[]tiny-qwen2-audio-crema_d-shrunk[]] PASSED*"])
    [run] = run_dirs(pytester)
    record = json.loads((run / "cells" / "tiny-qwen2-audio-crema_d-shrunk.json").read_text())
    base = json.loads((run / "cells" / "tiny-qwen2-audio-crema_d-base.json").read_text())
    for mine, theirs in zip(record["items"], base["items"]):
        if theirs["probs"] is not None:
            expected = 0.5 * np.asarray(theirs["probs"]) + 0.5 / len(theirs["probs"])
            np.testing.assert_allclose(mine["probs"], expected)


def test_grid_workers_share_the_cores(pytester, monkeypatch):
    """With grid cells, each of N workers gets cores // N threads, one process without ``-n``
    every core it may use (the user's own setting wins); numpy's BLAS, loaded before the plugin
    set the variables, takes the same share."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_grid="""
        import os
        from threadpoolctl import threadpool_info
        from harness.runner import GridConfig
        GRID = GridConfig(models=("uniform",), datasets=("crema_d", "iemocap"))

        def test_cell(cell, request):
            blas = {str(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"}
            worker = getattr(request.config, "workerinput", {}).get("workerid", "-")
            with open(f"threads-{cell.dataset}.txt", "w") as f:
                f.write(worker + " " + os.environ["OMP_NUM_THREADS"] + " " + ",".join(sorted(blas)))
    """)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    share = str(max(1, usable_cores() // 2))
    seen = {tuple(p.read_text().split()[1:]) for p in pytester.path.glob("threads-*.txt")}
    assert seen == {(share, share)}
    # without xdist, started by one of xdist's workers (as this test's own may be), which hands
    # on its variables: the session is no worker, and takes every core
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    every = str(usable_cores())
    assert {p.read_text() for p in pytester.path.glob("threads-*.txt")} == {f"- {every} {every}"}
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert {p.read_text().split()[1] for p in pytester.path.glob("threads-*.txt")} == {"7"}


def test_corpus_options_reach_the_cells_and_the_items_table(grid_dir):
    pytester = grid_dir()
    result = pytester.runpytest_subprocess("--dataset-option", "crema_d.votes_file=nowhere.csv",
                                           "-p", "no:cacheprovider", "-rs")
    result.stdout.fnmatch_lines(["*nowhere.csv*"])  # the option reached the loader
    result = pytester.runpytest_subprocess("--dataset-option", "iemocap.sesions=[1]",
                                           "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*unknown iemocap option 'sesions'; did you mean 'sessions'?*"])
    result = pytester.runpytest_subprocess("--dataset-option", "iemocap.merge_excited=maybe",
                                           "-p", "no:cacheprovider")
    assert result.ret == 4  # refused at start-up, before any cell ran
    result.stderr.fnmatch_lines(["*--dataset-option: iemocap option merge_excited takes true or "
                                 "false, not 'maybe'*"])
    pytester.runpytest_subprocess("--dataset-option", "iemocap.sessions=[1]", "--snapshot-update",
                                  "-p", "no:cacheprovider").assert_outcomes(passed=4)
    [*_, run] = run_dirs(pytester)
    cell = json.loads((run / "cells" / "uniform-iemocap-base.json").read_text())
    assert cell["meta"]["dataset"]["options"] == {"sessions": [1]}
    tables = (run / "tables.md").read_text()
    assert '| iemocap | {"sessions": [1]} |' in tables and "4,373" in tables


def test_data_a_damaged_label_file_dropped_is_said_in_the_run_and_its_records(grid_dir, tmp_path):
    from tests.helpers import corpus_copy

    root = corpus_copy("iemocap", tmp_path)
    evaluation = root / "IEMOCAP_full_release/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    evaluation.write_text(evaluation.read_text().replace("[3.0000 - 4.7500]", "[3.0000 4.7500", 1))
    pytester = grid_dir()
    result = pytester.runpytest_subprocess("-n", "2", "--iemocap-root", str(root), "-k", "iemocap",
                                           "--snapshot-update", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()  # a warning from each worker that loaded the corpus
    assert outcomes["passed"] == 2 and outcomes["warnings"] in (1, 2), outcomes
    result.stdout.fnmatch_lines([
        f"*UserWarning: iemocap at {root}: 1 problem in its files dropped data, the first: error: "
        f"{evaluation}:3: malformed utterance header*; python -m harness.data check iemocap {root} "
        "lists them",
        "Items: iemocap 25 items (the paper's: 4,373), 1 problem dropped data: python -m*"])
    [run] = run_dirs(pytester)
    cell = json.loads((run / "cells" / "uniform-iemocap-base.json").read_text())
    assert cell["meta"]["dataset"]["left_out"]["problems"] == {"error": 1, "warning": 0}
    assert "6 on purpose; 1 problem dropped data" in (run / "tables.md").read_text()


def test_a_corpus_read_as_empty_fails_its_cells_saying_so(grid_dir, tmp_path):
    votes = tmp_path / "votes.csv"
    from harness._embedded import embedded_path

    header = (embedded_path("crema_d") / "processedResults" / "tabulatedVotes.csv").read_text()
    votes.write_text(header.splitlines()[0] + "\n")  # the header alone
    pytester = grid_dir()
    result = pytester.runpytest_subprocess("--dataset-option", f"crema_d.votes_file={votes}",
                                           "-k", "crema_d", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)  # not two skips among the many a grid has
    result.stdout.fnmatch_lines(["uniform-crema_d-base: crema_d: no item to evaluate; the loader "
                                 "kept none of *: its label files list none"])
    assert "Traceback" not in result.stdout.str()


def test_a_report_that_cannot_be_built_says_where_the_records_are(grid_dir):
    """A full disk at the end of a long run: the records are written; the report says how to build
    it again instead of an INTERNALERROR."""
    pytester = grid_dir(conftest="""
        import harness.report.build as build

        def full_disk(run_dir):
            raise OSError(28, "No space left on device")

        build.build_report = full_disk
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 1 and "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["harness report: not built (OSError: [[]Errno 28[]] No space left on "
                                 "device); every cell's record is in *cells: python -m "
                                 "harness.report * builds it again"])
    [run] = run_dirs(pytester)
    assert len(list((run / "cells").glob("*-base.json"))) == 4


def test_a_run_stopped_by_ctrl_c_keeps_its_cells_and_its_report_says_so(grid_dir):
    """KeyboardInterrupt, as Ctrl-C raises it, in the third of four cells after its record."""
    pytester = grid_dir(extra=', strategies=("base",)')
    test_file = pytester.path / "test_grid.py"
    test_file.write_text(test_file.read_text() + """
    if cell.model == "label-prior" and cell.dataset == "crema_d":
        raise KeyboardInterrupt
""")
    result = pytester.runpytest_subprocess("--snapshot-update", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["harness report: This run stopped before every selected cell ran "
                                 "(interrupted, by Ctrl-C or a signal): 2 of its 4 selected tests "
                                 "finished, and the tables hold only the 3 cells recorded by then; "
                                 "not finished: label-prior-crema_d-base, *. The same command *"])
    [run] = run_dirs(pytester)
    report = json.loads((run / "report.json").read_text())
    assert len(report["cells"]) == 3 and report["stopped"]["tests_selected"] == 4
    recorded = {cell["cell"] for cell in report["cells"]}
    unfinished = report["stopped"]["unfinished"]
    assert len(unfinished) == 2 and "label-prior-crema_d-base" in unfinished  # recorded, interrupted
    assert len(recorded | set(unfinished)) == 4
    assert not (run / "running.json").exists()


@pytest.mark.parametrize(("workers", "session"), [([], "os.getpid()"),
                                                   (["-n", "2"], "os.getppid()")])
def test_a_run_sent_sigterm_stops_as_ctrl_c_stops_it(grid_dir, workers, session):
    """SIGTERM (a cluster job's time limit, ``timeout``, ``kill``) to the session's process in the
    third cell, after a second's wait (under xdist a worker sends it to the controller, which
    takes it on once a cell has reported to it): the cells recorded kept, the report built and
    saying so, no running.json left."""
    pytester = grid_dir(extra=', strategies=("base",)')
    test_file = pytester.path / "test_grid.py"
    test_file.write_text(test_file.read_text() + f"""
    if cell.model == "label-prior" and cell.dataset == "crema_d":
        import os, signal, time
        time.sleep(1)
        os.kill({session}, signal.SIGTERM)
        time.sleep(30)  # interrupted before then
""")
    result = pytester.runpytest_subprocess("--snapshot-update", "-p", "no:cacheprovider", *workers)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["harness report: This run stopped before every selected cell ran "
                                 "(terminated by SIGTERM (a job's time limit, timeout, kill)): * "
                                 "of its 4 selected tests finished, and the tables hold only the *"])
    [run] = run_dirs(pytester)
    stopped = json.loads((run / "report.json").read_text())["stopped"]
    assert stopped["reason"].startswith("terminated by SIGTERM") and not (run / "running.json").exists()
    # what never finished, as the controller knew the selection (xdist's collection included)
    assert "label-prior-crema_d-base" in stopped["unfinished"]
    assert len(stopped["unfinished"]) == 4 - stopped["tests_finished"]


@pytest.mark.parametrize(("workers", "session"), [([], "os.getpid()"),
                                                   (["-n", "2"], "os.getppid()")])
def test_a_run_killed_outright_leaves_a_folder_whose_report_says_so(grid_dir, workers, session):
    """SIGKILL (the out-of-memory killer's, a job's time limit's end) to the session's process in
    the third cell: nothing of it runs to say it stopped, and a report built from its folder later
    must not read as a smaller grid. Under xdist a worker kills the controller, its parent (which
    process to kill is written into the test: this test's own worker, under xdist, hands its
    PYTEST_XDIST_WORKER on to the session it starts)."""
    pytester = grid_dir(extra=', strategies=("base",)')
    test_file = pytester.path / "test_grid.py"
    test_file.write_text(test_file.read_text() + f"""
    if cell.model == "label-prior" and cell.dataset == "crema_d":
        import os, signal
        os.kill({session}, signal.SIGKILL)
""")
    result = pytester.runpytest_subprocess("--snapshot-update", "-p", "no:cacheprovider", *workers)
    assert result.ret == -signal.SIGKILL
    [run] = run_dirs(pytester)
    assert not (run / "report.json").exists() and not (run / "stopped.json").exists()
    marker = json.loads((run / "running.json").read_text())
    assert marker["pid"] == int(run.name.rsplit("-", 1)[1])  # the controller's, named in the folder
    built = build_report(run)
    stopped = built.stopped
    assert stopped.startswith("This run stopped before every selected cell ran (its session never "
                              "reached its end: its process was killed (SIGKILL, the "
                              "out-of-memory killer, a job's time limit) or its machine stopped): "
                              "4 tests were selected, and the tables hold only the "), stopped
    # the selected cells without a record, as the session's first cell wrote them down
    report = json.loads(built.path.read_text())  # the cells as the report found them: under
    recorded = {cell["cell"] for cell in report["cells"]}  # xdist a worker may write on after
    unrecorded = report["stopped"].get("unrecorded", [])
    assert len(marker["selected"]) == 4 and recorded | set(unrecorded) == set(marker["selected"])
    assert "label-prior-crema_d-base" not in unrecorded  # recorded, then killed
    if unrecorded:  # under xdist the other worker may have recorded every other cell meanwhile
        assert f"; no record of: {', '.join(unrecorded)} (a cell that skipped has none either)." \
            in stopped
    else:
        assert "no record of" not in stopped
