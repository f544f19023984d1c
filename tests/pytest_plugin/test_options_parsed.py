"""The grid's settings read from a configuration parsed in this process (``pytester.parseconfig``:
the plugin's options and ini values, no run): which source wins, how values are typed and checked,
where folders are, and what the grid becomes."""

import re
from pathlib import Path

import pytest

from harness.pytest_plugin import options
from harness.pytest_plugin.options import (
    check_grid,
    check_run_options,
    check_settings,
    folder_setting,
    resolved_grid,
    setting,
)
from harness.runner import GridConfig

NO_CACHE = ("-p", "no:cacheprovider")


def parsed(pytester, *args: str, ini: str = ""):
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    return pytester.parseconfig(*args, *NO_CACHE)


def test_the_command_line_wins_over_the_ini_file_which_wins_over_the_default(pytester):
    config = parsed(pytester, "--report-dir", "here", "--models", "uniform",
                    ini="harness_models = gpt-4o\nharness_prompts = harness-v0\n"
                        "harness_group_by = model\n")
    assert setting(config, "models") == "uniform"
    assert setting(config, "prompts") == "harness-v0" and setting(config, "group_by") == "model"
    assert setting(config, "plan") == "off" and setting(config, "verifier") is None
    assert setting(config, "gate_alpha") == 0.05 and setting(config, "gate_tolerance") == 0.0


def test_numbers_from_the_ini_file_are_numbers(pytester):
    config = parsed(pytester, ini="harness_limit = 7\nharness_gate_tolerance = 0.25\n")
    assert setting(config, "limit") == 7 and type(setting(config, "limit")) is int
    assert setting(config, "gate_tolerance") == 0.25
    config = parsed(pytester, "--limit", "3", "--gate-alpha", "0.01")
    assert setting(config, "limit") == 3 and setting(config, "gate_alpha") == 0.01


@pytest.mark.parametrize(("ini", "message"), [
    ("harness_limit = 2.5", "harness_limit = '2.5': not a whole number"),
    ("harness_gate_alpha = some", "harness_gate_alpha = 'some': not a number"),
    ("harness_plan = yes", "harness_plan = 'yes': choose from on, off"),
    ("harness_group_by = worker", "harness_group_by = 'worker': choose from auto, model-dataset"),
])
def test_an_ini_value_of_the_wrong_kind_is_a_usage_error_naming_it(pytester, ini, message):
    config = parsed(pytester, ini=ini)
    name = ini.split(" =")[0].removeprefix("harness_")
    with pytest.raises(pytest.UsageError, match=f"^{re.escape(message)}"):
        setting(config, name)


def test_folders_from_the_ini_file_lie_beside_it_and_the_command_line_s_where_pytest_started(
        pytester, monkeypatch):
    pytester.makeini("[pytest]\nharness_cache_dir = gen/../generations\n")
    sub = pytester.mkdir("sub")
    monkeypatch.chdir(sub)
    config = pytester.parseconfig("--report-dir", "out", "--iemocap-root", "~/corpora/iemocap",
                                  *NO_CACHE)
    assert folder_setting(config, "cache_dir") == pytester.path / "generations"
    assert folder_setting(config, "report_dir") == sub / "out"
    assert folder_setting(config, "iemocap_root") == Path.home() / "corpora" / "iemocap"
    assert folder_setting(config, "crema_d_root") is None
    assert set(options.corpus_roots(config)) == {"iemocap", "msp_podcast", "crema_d"}
    config = pytester.parseconfig(*NO_CACHE)
    assert folder_setting(config, "report_dir") == pytester.path / "reports"  # the ini's folder


def test_without_an_ini_file_the_defaults_lie_where_pytest_started(pytester, monkeypatch):
    sub = pytester.mkdir("sub")
    monkeypatch.chdir(sub)
    config = pytester.parseconfig(*NO_CACHE)
    assert config.inipath is None
    assert options.run_folder(config, "cache_dir") == sub / ".cache" / "harness"


def test_a_path_is_shown_relative_to_the_working_folder_where_it_lies_under_it(monkeypatch,
                                                                             tmp_path):
    monkeypatch.chdir(tmp_path)
    assert options.shown(tmp_path / "a" / "b") == Path("a/b")
    assert options.shown(Path("/elsewhere/x")) == Path("/elsewhere/x")


def test_the_ini_file_s_list_lines_come_before_the_command_line_s(pytester):
    config = parsed(pytester, "--strategy-arg", "beams=7",
                    ini="harness_strategy_args =\n    beams=3\n    tau=0.5\n")
    assert options.listed(config, "strategy_arg") == ["beams=3", "tau=0.5", "beams=7"]
    grid = resolved_grid(config, GridConfig(models=("uniform",)), cache=False)
    assert grid.strategy_args == {"beams": 7, "tau": 0.5}


def test_the_settings_make_the_grid(pytester):
    grid = GridConfig(models=("uniform",), dataset_options={"iemocap": {"sessions": [1]}},
                      strategy_args={"samples": 4}, verifiers={"gpt-4o": "gemini-2.0-flash"})
    config = parsed(pytester, "--models", " gpt-4o , uniform,", "--strategies", "base,bon",
                    "--datasets", "iemocap", "--verifier", "gpt-4o", "--limit", "9",
                    "--alpha", "mean", "--entropy-bins", "quantile", "--interval", "percentile",
                    "--invalid", "uniform", "--dataset-option", "iemocap.merge_excited=false",
                    "--dataset-option", "msp_podcast.split=Test1", "--model-arg",
                    "qwen2.5-omni-7b.dtype=float16", "--strategy-arg", " beams =5", "--prompts", "harness-v0")
    got = resolved_grid(config, grid)
    assert got.models == ("gpt-4o", "uniform") and got.strategies == ("base", "bon")
    assert got.datasets == ("iemocap",) and got.limit == 9
    assert got.verifier == "gpt-4o" and got.verifiers == {}
    assert (got.alpha, got.entropy_bins, got.interval) == ("mean", "quantile", "percentile")
    assert got.invalid == "uniform" and got.strategy_config().invalid == "uniform"
    assert got.dataset_options == {"iemocap": {"sessions": [1], "merge_excited": False},
                                   "msp_podcast": {"split": "Test1"}}
    assert got.model_args == {"qwen2.5-omni-7b": {"dtype": "float16"}}
    assert got.strategy_args == {"samples": 4, "beams": 5, "prompts": "harness-v0"}
    assert grid.dataset_options == {"iemocap": {"sessions": [1]}}  # the module's grid as it was
    assert resolved_grid(config, GridConfig(models=("label-prior",))) is got  # once a session


def test_without_settings_the_grid_is_the_module_s(pytester):
    grid = GridConfig(models=("uniform",), limit=4, verifier="gpt-4o", alpha="uniform")
    got = resolved_grid(parsed(pytester), grid, cache=False)
    assert got == grid


@pytest.mark.parametrize(("args", "message"), [
    (("--strategies", ","), "--strategies ',' names none"),
    (("--model-arg", "dtype=float16"), "--model-arg 'dtype=float16': expected MODEL.NAME=VALUE"),
    (("--model-arg", ".dtype=float16"), "expected MODEL.NAME=VALUE"),
    (("--model-arg", "gpt-4o.=1"), "expected MODEL.NAME=VALUE"),
    (("--dataset-option", "iemocap.sessions"), "--dataset-option 'iemocap.sessions': expected "
                                               "CORPUS.NAME=VALUE"),
    (("--strategy-arg", "=3"), "--strategy-arg '=3': expected NAME=VALUE"),
    (("--strategy-arg", "beams"), "expected NAME=VALUE"),
])
def test_a_malformed_setting_is_a_usage_error_naming_it(pytester, args, message):
    with pytest.raises(pytest.UsageError, match=("^" if message[0] == "-" else "") + re.escape(message)):
        resolved_grid(parsed(pytester, *args), GridConfig(models=("uniform",)), cache=False)


@pytest.mark.parametrize(("changes", "message"), [
    ({"models": ("qwen2-audoi-7b",)}, "unknown model 'qwen2-audoi-7b'; did you mean"),
    ({"verifier": "gpt4o"}, "unknown model 'gpt4o'"),
    ({"verifiers": {"uniform": "gemini"}}, "unknown model 'gemini'"),
    ({"model_args": {"qwen3": {"dtype": "x"}}}, "unknown model 'qwen3'"),
    ({"verifiers": {"gpt-4o": "label-prior"}}, "verifier 'label-prior': a chance baseline cannot"),
    ({"strategies": ("base", "w-bom")}, "unknown strategy 'w-bom'"),
    ({"datasets": ("iemocap", "msp-podcast")}, "unknown corpus 'msp-podcast'"),
    ({"dataset_options": {"crema": {}}}, "unknown corpus in --dataset-option 'crema'"),
    ({"dataset_options": {"crema_d": {"vote_file": "x"}}}, "unknown crema_d option 'vote_file'"),
    ({"dataset_options": {"iemocap": {"vote_mode": "bogus"}}}, "--dataset-option: iemocap option "
                                                               "vote_mode takes one of"),
    ({"strategy_args": {"beems": 3}}, "unknown strategy argument 'beems'"),
    ({"strategy_args": {"prompts": "papr"}}, "unknown prompt set 'papr'"),
    ({"strategy_args": {"beams": 0}}, "--strategy-arg: "),
    ({"limit": 0}, "--limit must be at least 1, not 0"),
    ({"models": ("uniform", "gpt-4o", "uniform")}, "models uniform, gpt-4o, uniform: 'uniform' is "
                                                   "named twice (each cell runs once)"),
    ({"models": ("openai-compatible:org/m", "uniform", "openai-compatible:org_m")},
     "models 'openai-compatible:org/m' and 'openai-compatible:org_m' would write their cells to "
     "the same files (openai-compatible_org_m-..."),
    ({"models": ("openai-compatible:Org/M", "openai-compatible:org/m")},
     "models 'openai-compatible:Org/M' and 'openai-compatible:org/m' would write their cells"),
    ({"datasets": ("iemocap", "iemocap")}, "datasets iemocap, iemocap: 'iemocap' is named twice"),
    ({"strategies": ("base", "cot", "base")}, "strategies base, cot, base: 'base' is named twice"),
    ({"alpha": "means"}, "the grid's alpha = 'means': choose from raw, mean, uniform"),
    ({"entropy_bins": "equal"}, "the grid's entropy_bins = 'equal'"),
    ({"interval": "bca"}, "the grid's interval = 'bca'"),
])
def test_a_grid_naming_what_is_not_there_is_one_usage_error(changes, message):
    grid = GridConfig(models=("uniform", "gpt-4o"), datasets=("iemocap",), strategies=("base",))
    check_grid(grid)  # as it is, valid
    with pytest.raises(pytest.UsageError, match=f"^{re.escape(message)}"):
        check_grid(GridConfig(**{**dict(models=grid.models, datasets=grid.datasets,
                                        strategies=grid.strategies), **changes}))


def test_a_grid_of_valid_names_and_options_passes():
    check_grid(GridConfig(models=("qwen2.5-omni-7b", "uniform", "openai-compatible:org/model",
                                  "openai-compatible:org/model-2"), verifier="gemini-2.0-flash",
                          verifiers={"uniform": "gpt-4o"}, datasets=("msp_podcast", "crema_d"),
                          dataset_options={"iemocap": {"sessions": [1, 2]}},
                          model_args={"qwen2.5-omni-7b": {"dtype": "float16"}},
                          strategy_args={"beams": 3, "prompts": "harness-v0"}, limit=1,
                          alpha="mean", entropy_bins="quantile", interval="percentile"))


@pytest.mark.parametrize(("args", "message"), [
    (("--crema-d-root", "nowhere"), "--crema-d-root nowhere: no such folder (the crema_d corpus "
                                    "root)"),
    (("--msp-podcast-root", "a-file"), "--msp-podcast-root a-file: is a regular file, not a folder"),
    (("--gate-tolerance", "-0.01"), "--gate-tolerance must be a number of at least 0, not -0.01"),
    (("--gate-tolerance", "nan"), "--gate-tolerance must be a number of at least 0, not nan"),
    (("--gate-alpha", "0"), "--gate-alpha must be above 0 and at most 0.5, not 0.0"),
    (("--gate-alpha", "0.51"), "--gate-alpha must be above 0 and at most 0.5, not 0.51"),
    (("--shard", "0/2"), "--shard '0/2': expected I/N"),
    (("--verifier", "uniform"), "verifier 'uniform': a chance baseline"),
    (("--models", "uniform", "--strategy-arg", "tau=0"), "--strategy-arg: tau must be"),
])
def test_a_setting_that_cannot_run_is_refused_before_collection(pytester, monkeypatch, args,
                                                                message):
    monkeypatch.chdir(pytester.path)
    (pytester.path / "a-file").write_text("")
    with pytest.raises(pytest.UsageError, match=f"^{re.escape(message)}"):
        check_settings(parsed(pytester, *args))


def test_settings_at_their_edges_are_taken(pytester, monkeypatch):
    monkeypatch.chdir(pytester.path)
    pytester.mkdir("corpus")
    check_settings(parsed(pytester, "--iemocap-root", "corpus", "--gate-tolerance", "0",
                          "--gate-alpha", "0.5", "--shard", "2/2", "--verifier", "gpt-4o"))
    check_settings(parsed(pytester, "--gate-alpha", "1e-9"))


@pytest.mark.parametrize(("name", "value"), [
    ("HARNESS_READERS", "0"), ("HARNESS_CHUNK_MIB", "-1"), ("HARNESS_MAX_CLIP_SECONDS", "long"),
    ("HARNESS_GPUS", "first"), ("HARNESS_DEFER_LOADING", "later")])
def test_a_bad_harness_variable_is_refused_before_collection(pytester, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.UsageError, match=name):
        check_settings(parsed(pytester))


def test_checking_the_settings_leaves_the_grid_to_be_made_from_the_module_s(pytester):
    config = parsed(pytester, "--limit", "2")
    check_settings(config)
    grid = resolved_grid(config, GridConfig(models=("uniform",), datasets=("crema_d",)))
    assert grid.models == ("uniform",) and grid.datasets == ("crema_d",) and grid.limit == 2


def test_the_grid_module_s_own_names_are_checked_once_its_grid_is_made(pytester):
    with pytest.raises(pytest.UsageError, match="^unknown model 'qwen9'"):
        resolved_grid(parsed(pytester), GridConfig(models=("qwen9",)))


@pytest.mark.parametrize(("args", "gpus", "message"), [
    (("--plan", "on"), "0,1", None),  # one process: every cell in it
    (("-n", "2", "--dist", "loadgroup", "--plan", "on"), "0", None),  # auto: model-dataset
    (("-n", "2", "--dist", "loadgroup", "--plan", "on", "--group-by", "model"), "0,1", None),
    (("-n", "2", "--dist", "loadgroup", "--plan", "off", "--group-by", "cell"), "0", None),
    (("-n", "2", "--dist", "loadgroup", "--plan", "on"), "0,1",
     "--plan on with --group-by decoding: "),  # auto on two GPUs: decoding
    (("-n", "2", "--dist", "loadgroup", "--plan", "on", "--group-by", "cell"), "0",
     "--plan on with --group-by cell: "),
    (("-n", "2", "--dist", "load", "--plan", "on", "--group-by", "model"), "0",
     "--plan on with --dist load: "),
])
def test_a_plan_needs_a_model_s_cells_on_a_corpus_on_one_worker(pytester, monkeypatch, args, gpus,
                                                                message):
    monkeypatch.setenv("HARNESS_GPUS", gpus)
    config = parsed(pytester, *args)
    if message is None:
        check_settings(config)
    else:
        with pytest.raises(pytest.UsageError, match=f"^{re.escape(message)}.*use --"):
            check_settings(config)


def test_the_run_s_folders_are_made_and_probed_and_the_cache_opened(pytester, monkeypatch):
    monkeypatch.chdir(pytester.path)
    config = parsed(pytester, "--report-dir", "deep/reports", "--cache-dir", "deep/cache")
    check_run_options(config)
    assert (pytester.path / "deep" / "cache" / "generations.sqlite").is_file()
    assert [p.name for p in (pytester.path / "deep" / "reports").iterdir()] == []  # no probe left


@pytest.mark.parametrize("name", ["report-dir", "cache-dir"])
def test_a_file_where_a_run_s_folder_goes_is_refused(pytester, monkeypatch, name):
    monkeypatch.chdir(pytester.path)
    (pytester.path / "taken").write_text("")
    config = parsed(pytester, f"--{name}", "taken")
    with pytest.raises(pytest.UsageError, match=f"^--{name} taken cannot be written: something "
                                                "that is not a folder is there"):
        check_run_options(config)


def test_a_folder_that_cannot_be_made_is_refused_with_the_system_s_reason(pytester, monkeypatch):
    monkeypatch.chdir(pytester.path)
    (pytester.path / "taken").write_text("")
    with pytest.raises(pytest.UsageError, match=r"^--report-dir taken/sub cannot be written: Not a "
                                                r"directory$"):
        check_run_options(parsed(pytester, "--report-dir", "taken/sub"))


def test_a_file_in_the_cache_s_place_that_is_no_cache_is_refused(pytester, monkeypatch):
    monkeypatch.chdir(pytester.path)
    (pytester.path / "c").mkdir()
    (pytester.path / "c" / "generations.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(pytest.UsageError, match="generations.sqlite"):
        check_run_options(parsed(pytester, "--cache-dir", "c"))


@pytest.mark.parametrize("args", [("--plan", "maybe"), ("--limit", "ten"), ("--gate-alpha", "x"),
                                  ("--interval", "bca"), ("--group-by", "gpu")])
def test_a_command_line_value_of_the_wrong_kind_is_refused_as_it_is_parsed(pytester, args):
    with pytest.raises(pytest.UsageError, match=f"argument {args[0]}"):
        parsed(pytester, *args)


def test_the_repeatable_and_the_switch_options_default_to_nothing(pytester):
    config = parsed(pytester, ini="harness_models = uniform\n")
    assert config.getoption("--model-arg") == [] and config.getini("harness_model_args") == []
    assert config.getoption("--update-baselines") is False and config.getoption("--shard") is None
    assert config.getini("harness_report_dir") is None  # the default is the plugin's to apply
