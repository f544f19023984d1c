"""Settings from the command line and the ini file, and the usage errors a mistake gets (pytester)."""

import json

import pytest

from tests.pytest_plugin.grid_project import GRID_MODULE, grid_project

NO_CACHE = ("-p", "no:cacheprovider")


@pytest.mark.parametrize(("args", "message"), [
    (("--models", "qwen2-audoi-7b"), "*unknown model 'qwen2-audoi-7b'; did you mean 'qwen2-audio-7b'*"),
    (("--strategies", "w-bom"), "*unknown strategy 'w-bom'; did you mean 'w-bon'*"),
    (("--datasets", "iemocap,msp-podcast"), "*unknown corpus 'msp-podcast'; did you mean 'msp_podcast'*"),
    (("--models", " , "), "*--models ' , ' names none*"),
    (("--strategies", "base,cot,base"), "*strategies base, cot, base: 'base' is named twice*"),
    (("--models", "openai-compatible:a/b,openai-compatible:a_b"), "*models 'openai-compatible:a/b' "
     "and 'openai-compatible:a_b' would write their cells to the same files*"),
    (("--verifier", "gpt4o"), "*unknown model 'gpt4o'; did you mean 'gpt-4o'*"),
    (("--verifier", "uniform"), "*verifier 'uniform': a chance baseline cannot score candidates*"),
    (("--iemocap-root", "/nonexistent"), "*--iemocap-root /nonexistent: no such folder*"),
    (("--strategy-arg", "beems=7"), "*unknown strategy argument 'beems'; did you mean 'beams'*"),
    (("--strategy-arg", "tau=0"), "*--strategy-arg: tau must be a finite number above 0, not 0*"),
    (("--prompts", "papr"), "*unknown prompt set 'papr'; did you mean 'paper'*"),
    (("--model-arg", "dtype=float16"), "*--model-arg 'dtype=float16': expected MODEL.NAME=VALUE*"),
    (("--shard", "3/2"), "*--shard '3/2': expected I/N with 1 <= I <= N*"),
    (("--gate-tolerance", "nan"), "*--gate-tolerance must be a number of at least 0, not nan*"),
    (("--gate-alpha", "0.6"), "*--gate-alpha must be above 0 and at most 0.5, not 0.6*"),
    (("--dataset-option", "iemocap.session=[1]"), "*unknown iemocap option 'session'; did you "
                                                   "mean 'sessions'*"),
    (("-o", "harness_alpha=means"), "*harness_alpha = 'means': choose from raw, mean, uniform*"),
    (("-o", "harness_entropy_bins=equal"), "*harness_entropy_bins = 'equal': choose from width, "
                                           "quantile*"),
    (("-o", "harness_gate_tolerance=a bit"), "*harness_gate_tolerance = 'a bit': not a number*"),
    (("-o", "harness_interval=bca"), "*harness_interval = 'bca': choose from expanded, percentile*"),
    (("-o", "harness_invalid=drop"), "*harness_invalid = 'drop': choose from left_out, uniform*"),
    (("-n", "2", "--dist", "loadgroup", "--plan", "on", "--group-by", "cell"),
     "*--plan on with --group-by cell: a model's cells on a corpus would be spread over workers*"),
    (("-n", "2", "--plan", "on", "--dist", "load"),
     "*--plan on with --dist load: a model's cells on a corpus would be spread over workers*"),
])
def test_a_mistake_is_one_usage_error_before_anything_runs(pytester, args, message):
    grid_project(pytester)
    result = pytester.runpytest_subprocess(*args, *NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() and not (pytester.path / "reports").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (', interval="bca"', "*the grid's interval = 'bca': choose from expanded, percentile*"),
    (', entropy_bins="equal"', "*the grid's entropy_bins = 'equal': choose from width, quantile*"),
    (', alpha="means"', "*the grid's alpha = 'means': choose from raw, mean, uniform*"),
])
def test_a_grid_module_s_own_mistake_stops_the_run_before_any_cell(pytester, extra, message):
    """An error collecting the grid, before any cell runs, as an unknown model there is, not a
    failure of every cell (the command line's and the ini file's values were checked; the grid
    module's were not)."""
    grid_project(pytester, extra)
    result = pytester.runpytest_subprocess(*NO_CACHE)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's code for an error collecting
    result.stdout.fnmatch_lines([message, "ERROR test_grid.py*"])
    assert "Traceback" not in result.stdout.str() and not (pytester.path / "reports").exists()


def test_pytest_help_prints_each_harness_option_s_text_as_written(pytester):
    """argparse formats a help text with ``%``: a bare ``5%`` printed the option's whole
    internals in place of its text."""
    from harness.pytest_plugin.options import LISTS, SETTINGS

    result = pytester.runpytest("--help", *NO_CACHE)
    shown = " ".join(result.stdout.str().split())
    assert result.ret == pytest.ExitCode.OK and "option_strings" not in shown
    for text in [text for text, _ in SETTINGS.values()] + list(LISTS.values()):
        assert " ".join(text.split()) in shown


def test_defaults_come_from_the_ini_file_and_the_command_line_wins(pytester):
    grid_project(pytester)
    pytester.makeini("""
        [pytest]
        harness_models = uniform
        harness_limit = 5
        harness_report_dir = out
        harness_entropy_bins = quantile
        harness_alpha = mean
        harness_interval = percentile
        harness_invalid = uniform
        harness_strategy_args =
            beams=3
            prompts=harness-v0
        harness_dataset_options =
            iemocap.sessions=[1]
    """)
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=2)  # uniform only, on both corpora
    [run] = sorted((pytester.path / "out").iterdir())
    record = json.loads((run / "cells" / "uniform-iemocap-base.json").read_text())
    assert record["metrics"]["n_items"] == 5 and record["meta"]["dataset"]["options"] == {"sessions": [1]}
    assert record["meta"]["strategy_config"]["beams"] == 3
    assert record["meta"]["strategy_config"]["alpha"] == "mean"
    assert record["meta"]["strategy_config"]["invalid"] == "uniform"
    assert record["metrics"]["bins"]["method"] == "quantile"
    assert record["metrics"]["interval"] == "percentile"
    result = pytester.runpytest_subprocess("--models", "label-prior", "--limit", "1",  # the edges
                                           "--gate-alpha", "0.5", "--entropy-bins", "width",
                                           "--interval", "expanded", "--invalid", "left_out",
                                           *NO_CACHE)
    result.assert_outcomes(passed=2)
    [*_, run] = sorted((pytester.path / "out").iterdir())
    record = json.loads((run / "cells" / "label-prior-crema_d-base.json").read_text())
    assert record["metrics"]["n_items"] == 1 and record["metrics"]["bins"]["method"] == "width"
    assert record["metrics"]["interval"] == "expanded"
    assert record["meta"]["strategy_config"]["invalid"] == "left_out"


def test_folders_are_the_project_s_wherever_pytest_starts(pytester, monkeypatch):
    """The ini file's folders are relative to it and the defaults to the rootdir, so a run started
    in a subfolder reuses the project's cache; the command line's are relative to where it is."""
    pytester.makeini("""
        [pytest]
        harness_cache_dir = generations
    """)
    evals = pytester.mkdir("evals")
    (evals / "test_grid.py").write_text(GRID_MODULE.format(extra=""))
    monkeypatch.chdir(evals)
    result = pytester.runpytest_subprocess(*NO_CACHE)
    result.assert_outcomes(passed=4)
    [run] = (pytester.path / "reports").iterdir()
    assert (run / "report.json").is_file() and (pytester.path / "generations").is_dir()
    assert {p.name for p in evals.iterdir()} <= {"test_grid.py", "__pycache__"}
    result.stdout.fnmatch_lines([f"harness report: {run / 'report.json'} *"])
    result = pytester.runpytest_subprocess("--report-dir", "here", *NO_CACHE)
    [run] = (evals / "here").iterdir()
    result.stdout.fnmatch_lines([f"harness report: {run.relative_to(evals) / 'report.json'} *"])


def test_model_arguments_reach_the_model_and_a_wrong_one_fails_its_cells(pytester):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytester.makepyfile(test_grid="""
        from harness.runner import GridConfig
        GRID = GridConfig(models=("tiny-qwen2-audio",), datasets=("crema_d",), strategies=("base",),
                          limit=3)

        def test_cell(cell, run_cell):
            run_cell(cell)
    """)
    result = pytester.runpytest_subprocess("--model-arg", "tiny-qwen2-audio.dtype=bfloat16", *NO_CACHE)
    result.assert_outcomes(passed=1)
    [run] = sorted((pytester.path / "reports").iterdir())
    meta = json.loads((run / "cells" / "tiny-qwen2-audio-crema_d-base.json").read_text())["meta"]
    assert meta["model"]["dtype"] == "bfloat16"
    result = pytester.runpytest_subprocess("--model-arg", "tiny-qwen2-audio.long_audio=wrap", *NO_CACHE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tiny-qwen2-audio: model arguments {'long_audio': 'wrap'}: "
                                 "long_audio must be one of*"])


def test_with_a_plan_the_first_cell_runs_every_strategy_and_the_records_are_the_same(pytester):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytester.makepyfile(test_grid="""
        from harness.runner import GridConfig
        GRID = GridConfig(models=("tiny-qwen2-audio",), datasets=("crema_d",),
                          strategies=("base", "bon", "w-bon", "sample-n"), limit=5)

        def test_cell(cell, run_cell):
            run_cell(cell)
    """)
    records = {}
    for plan in ("off", "on"):
        result = pytester.runpytest_subprocess("--plan", plan, "--cache-dir", f"cache-{plan}",
                                               "--report-dir", f"reports-{plan}", *NO_CACHE)
        result.assert_outcomes(passed=4)
        [run] = sorted((pytester.path / f"reports-{plan}").iterdir())
        records[plan] = {p.stem: json.loads(p.read_text())
                         for p in (run / "cells").glob("*.json")}
        # the cache at the end of the session: its one file, whole (no -wal or -shm left)
        assert [p.name for p in (pytester.path / f"cache-{plan}").iterdir()] == ["generations.sqlite"]
    for cell, planned in records["on"].items():
        alone = records["off"][cell]
        assert planned["items"] == alone["items"] and planned["metrics"] == alone["metrics"], cell
        assert planned["meta"]["plan"]["ran_in_cell"] == "tiny-qwen2-audio-crema_d-base"
        assert planned["meta"]["plan"]["strategies"] == ["base", "bon", "sample-n", "w-bon"]
        assert "plan" not in alone["meta"]
        share = planned["meta"]["plan"]["seconds"]  # the plan's time for this cell's strategy,
        assert planned["seconds"] >= share >= 0.0, cell  # counted in the cell's seconds
        # the calls the plan made for a cell are the cell's, as those it makes alone: w-bon reads
        # bon's beams either way
        assert planned["meta"]["generations"] == alone["meta"]["generations"], cell
        assert alone["meta"]["generations"] == ({"computed": 0, "from_cache": 5} if "w-bon" in cell
                                                else {"computed": 5, "from_cache": 0}), cell
