"""The grid's options: the command line over ``[tool.pytest.ini_options]`` (or ``pytest.ini``) over
the grid module's ``GRID``, checked at collection so that a mistake is one usage error, with the
closest valid names, before anything runs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from harness._names import unknown_name
from harness._regular import not_a_folder
from harness._values import typed
from harness.resampling import INTERVALS
from harness.runner.grid import GridConfig
from harness.strategies import INVALID_READINGS

GRID = pytest.StashKey[GridConfig]()
CORPUS_ROOTS = {"iemocap": "IEMOCAP_ROOT", "msp_podcast": "MSP_PODCAST_ROOT", "crema_d": "CREMA_D_ROOT"}
GROUP_BY = ("auto", "model-dataset", "decoding", "model", "cell")
CHOICES = {"group_by": GROUP_BY, "plan": ("on", "off"), "alpha": ("raw", "mean", "uniform"),
           "entropy_bins": ("width", "quantile"), "interval": INTERVALS,
           "invalid": INVALID_READINGS}
NUMBERS = {"limit": int, "gate_tolerance": float, "gate_alpha": float}  # settings that are numbers, not text
# settings with an ini default: name -> (help, default); the command line's --<name> wins
SETTINGS = {
    "models": ("comma-separated models (default: the grid module's)", None),
    "strategies": ("comma-separated strategies (default: the grid module's)", None),
    "datasets": ("comma-separated corpora (default: the grid module's)", None),
    "verifier": ("the verifier model for alm-v/w-alm-v (default: the grid module's)", None),
    "limit": ("items per corpus: a deterministic, entropy-stratified subsample (a larger N keeps a "
              "smaller one's items)", None),
    "prompts": ("the prompt set (default: paper)", None),
    "report_dir": ("where runs write their reports", "reports"),
    "cache_dir": ("the generation cache's folder (a local disk: not NFS/SMB)", ".cache/harness"),
    "group_by": ("what one xdist worker runs together: auto (model-dataset, or decoding with "
                 "several GPUs), model-dataset, decoding, model or cell", "auto"),
    "plan": ("on: the first cell of a model on a corpus runs every selected strategy's model "
             "calls as one plan (each clip read once for all; a backend taking several decodings "
             "at once prefills each clip once), the others read the cache; off: each cell alone",
             "off"),
    **{f"{corpus}_root": (f"the {corpus} root (default: ${env}, else the bundled copy)", None)
       for corpus, env in CORPUS_ROOTS.items()},
    "alpha": ("what w-bon weighs beams by: the raw log-likelihood, per token (mean), or uniformly "
              "(default: the grid module's, raw)", None),
    "entropy_bins": ("ambiguity levels: equal-width or equal-count (quantile) (default: the grid "
                     "module's, width)", None),
    "interval": ("how each bootstrap CI's level is taken: expanded (as wide as Student's t "
                 "interval over few items) or percentile (the plain interval, narrow on few "
                 "items) (default: the grid module's, expanded)", None),
    "invalid": ("how an answer that gave no distribution is scored: left out of the means and "
                "counted, or scored as a uniform guess, 1/K each (default: the grid module's, "
                "left_out)", None),
    "gate_tolerance": ("how much worse than the baseline a metric may get", 0.0),
    "gate_alpha": ("how often a cell whose update changed nothing systematically may fail the "
                   "gate: its metrics' intervals hold together at 1 - alpha (default 0.05; a run "
                   "of C cells held to 5% as a whole: 0.05/C)", 0.05),
}
LISTS = {"model_arg": "MODEL.NAME=VALUE: a model's argument, e.g. qwen2-audio-7b.dtype=float16",
         "strategy_arg": "NAME=VALUE: a StrategyConfig field for every cell, e.g. beams=7",
         "dataset_option": "CORPUS.NAME=VALUE: a corpus option, e.g. msp_podcast.split=Test1"}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "audio-LM ambiguous-emotion benchmark")
    for name, (text, _) in SETTINGS.items():
        flag = f"--{name.replace('_', '-')}"
        shown = text.replace("%", "%%")  # argparse formats help with %: "5%" would be a format
        group.addoption(flag, default=None, help=f"{shown} [ini: harness_{name}]",
                        type=NUMBERS.get(name, str), choices=CHOICES.get(name))
        parser.addini(f"harness_{name}", text, default=None)
    for name, text in LISTS.items():
        group.addoption(f"--{name.replace('_', '-')}", action="append", default=[],
                        help=f"{text} (JSON values; repeatable) [ini: harness_{name}s, one a line]")
        parser.addini(f"harness_{name}s", text, type="linelist", default=[])
    group.addoption("--update-baselines", action="store_true",
                    help="record each selected cell's predictions as its baseline, and its snapshot")
    group.addoption("--shard", default=None, metavar="I/N",
                    help="run the I-th of N deterministic shares of the cells (1-based)")


def setting(config: pytest.Config, name: str) -> Any:
    """A setting from the command line, else the ini file, else its default."""
    value = config.getoption(f"--{name.replace('_', '-')}", default=None)
    if value is None:
        value = config.getini(f"harness_{name}") or None
    if value is None:
        value = SETTINGS[name][1]
    if name in NUMBERS and isinstance(value, str):
        try:
            value = NUMBERS[name](value)
        except ValueError:
            kind = "a whole number" if NUMBERS[name] is int else "a number"
            raise pytest.UsageError(f"harness_{name} = {value!r}: not {kind}") from None
    if name in CHOICES and value is not None and value not in CHOICES[name]:  # ini values
        raise pytest.UsageError(f"harness_{name} = {value!r}: choose from "
                                f"{', '.join(CHOICES[name])}")
    return value


def folder_setting(config: pytest.Config, name: str) -> Path | None:
    """A folder setting (``report_dir``, ``cache_dir``, a corpus root) as an absolute path: from
    the command line, relative to where pytest was started; from the ini file, or the default,
    relative to the ini file's folder (as pytest's own ``paths`` ini values), where pytest
    started if there is none; ``..`` taken out as pytest's own paths are. A run started in a
    subfolder uses the project's cache and reports."""
    value = config.getoption(f"--{name.replace('_', '-')}", default=None)
    if value is None:
        value = config.getini(f"harness_{name}") or SETTINGS[name][1]
        base = config.inipath.parent if config.inipath else config.invocation_params.dir
    else:
        base = config.invocation_params.dir
    return None if value is None else Path(os.path.abspath(base / Path(value).expanduser()))


def shown(path: Path) -> Path:
    """``path`` relative to the working folder where it lies under it (as a user would type it)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run_folder(config: pytest.Config, name: str) -> Path:
    """``report_dir`` or ``cache_dir``, which have defaults, as :func:`folder_setting` gives it."""
    folder = folder_setting(config, name)
    assert folder is not None, name
    return folder


def listed(config: pytest.Config, name: str) -> list[str]:
    """A repeatable option's values: the ini file's lines first, the command line's after."""
    return [*config.getini(f"harness_{name}s"), *config.getoption(f"--{name.replace('_', '-')}")]


def corpus_roots(config: pytest.Config) -> dict[str, Path | None]:
    return {corpus: folder_setting(config, f"{corpus}_root") for corpus in CORPUS_ROOTS}


def resolved_grid(config: pytest.Config, grid: GridConfig, cache: bool = True) -> GridConfig:
    """The module's grid with the settings applied (computed once per session)."""
    if cache and GRID in config.stash:
        return config.stash[GRID]
    changes: dict[str, Any] = {}
    for name in ("models", "strategies", "datasets"):
        value = setting(config, name)
        if value:
            changes[name] = tuple(v.strip() for v in value.split(",") if v.strip())
            if not changes[name]:  # a grid of no cells would pass, having run nothing
                raise pytest.UsageError(f"--{name} {value!r} names none")
    if setting(config, "verifier"):
        changes.update(verifier=setting(config, "verifier"), verifiers={})
    if setting(config, "limit") is not None:
        changes["limit"] = setting(config, "limit")
    for name in ("alpha", "entropy_bins", "interval", "invalid"):
        if setting(config, name):
            changes[name] = setting(config, name)
    if listed(config, "dataset_option"):
        changes["dataset_options"] = _nested(grid.dataset_options, listed(config, "dataset_option"),
                                             "--dataset-option", "CORPUS")
    if listed(config, "model_arg"):
        changes["model_args"] = _nested(grid.model_args, listed(config, "model_arg"), "--model-arg",
                                        "MODEL")
    strategy_args = dict(grid.strategy_args)
    strategy_args.update(_pairs(listed(config, "strategy_arg"), "--strategy-arg"))
    if setting(config, "prompts"):
        strategy_args["prompts"] = setting(config, "prompts")
    changes["strategy_args"] = strategy_args
    resolved = dataclasses.replace(grid, **changes)
    if cache:
        check_grid(resolved)
        config.stash[GRID] = resolved
    return resolved


def _pairs(given: list[str], flag: str) -> dict[str, Any]:
    out = {}
    for text in given:
        name, equals, raw = text.partition("=")
        if not (equals and name.strip()):
            raise pytest.UsageError(f"{flag} {text!r}: expected NAME=VALUE")
        out[name.strip()] = typed(raw)
    return out


def _nested(base: Any, given: list[str], flag: str, owner: str) -> dict[str, dict[str, Any]]:
    """``OWNER.NAME=VALUE`` values over ``base`` (the owner may contain dots: qwen2.5-omni-7b)."""
    out = {key: dict(values) for key, values in base.items()}
    for text in given:
        left, equals, raw = text.partition("=")
        who, dot, name = left.rpartition(".")
        if not (equals and dot and who and name):
            raise pytest.UsageError(f"{flag} {text!r}: expected {owner}.NAME=VALUE")
        out.setdefault(who, {})[name] = typed(raw)
    return out


def _unknown(kind: str, name: str, known: list[str] | tuple[str, ...]) -> pytest.UsageError:
    return pytest.UsageError(unknown_name(kind, name, known))


def check_grid(grid: GridConfig) -> None:
    """Every name the grid uses is registered and every option valid, or one usage error."""
    from harness.data import CORPORA
    from harness.strategies import strategy_names

    _check_models(grid)
    for name in grid.strategies:
        if name not in strategy_names():
            raise _unknown("strategy", name, strategy_names())
    for name in grid.datasets:
        if name not in CORPORA:
            raise _unknown("corpus", name, sorted(CORPORA))
    _check_each_once(grid)
    _check_dataset_options(grid)
    _check_strategy_args(grid)
    if grid.limit is not None and grid.limit < 1:
        raise pytest.UsageError(f"--limit must be at least 1, not {grid.limit}")
    for name in ("alpha", "entropy_bins", "interval", "invalid"):  # a grid module's own, unchecked above
        if getattr(grid, name) not in CHOICES[name]:
            raise pytest.UsageError(f"the grid's {name} = {getattr(grid, name)!r}: choose from "
                                    f"{', '.join(CHOICES[name])}")


def _check_models(grid: GridConfig) -> None:
    """Every model and verifier named is registered, and no verifier is a chance baseline."""
    from harness.models.registry import model_entry, model_names

    known_models = model_names()
    for name in {*grid.models, grid.verifier, *grid.verifiers.values(), *grid.model_args}:
        try:
            model_entry(name)
        except ValueError:
            raise _unknown("model", name, known_models) from None
    for name in sorted({grid.verifier, *grid.verifiers.values()}):
        if model_entry(name).kind == "chance":  # it has no generate: alm-v failed after the model ran
            raise pytest.UsageError(f"verifier {name!r}: a chance baseline cannot score candidates; "
                                    "name a local or API model (e.g. --verifier gpt-4o)")


def _check_dataset_options(grid: GridConfig) -> None:
    """Each ``--dataset-option`` names a corpus, one of its options and a value it takes."""
    from harness.data import CORPORA, option_names
    from harness.data.loader import checked_options

    for corpus, options in grid.dataset_options.items():
        if corpus not in CORPORA:
            raise _unknown("corpus in --dataset-option", corpus, sorted(CORPORA))
        for name in options:
            if name not in option_names(corpus):
                raise _unknown(f"{corpus} option", name, option_names(corpus))
        try:
            checked_options(corpus, options)
        except ValueError as exc:
            raise pytest.UsageError(f"--dataset-option: {exc}") from None


def _check_strategy_args(grid: GridConfig) -> None:
    """Each ``--strategy-arg`` is a field of :class:`StrategyConfig` with a value it takes, and
    the prompt set it names is registered."""
    from harness.prompts import PROMPT_SETS
    from harness.strategies import StrategyConfig

    fields = [f.name for f in dataclasses.fields(StrategyConfig)]
    for name in grid.strategy_args:
        if name not in fields:
            raise _unknown("strategy argument", name, fields)
    prompts = grid.strategy_args.get("prompts", "paper")
    if prompts not in PROMPT_SETS:
        raise _unknown("prompt set", str(prompts), sorted(PROMPT_SETS))
    try:
        StrategyConfig(**grid.strategy_args)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"--strategy-arg: {exc}") from None


def _check_each_once(grid: GridConfig) -> None:
    """A model, corpus or strategy named twice (``--strategies base,cot,base``) would make each
    of its cells twice (``...-base0``, ``...-base1``), run twice, writing one record."""
    for kind in ("models", "datasets", "strategies"):
        names = getattr(grid, kind)
        twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
        if twice is not None:
            raise pytest.UsageError(f"{kind} {', '.join(names)}: {twice!r} is named twice "
                                    "(each cell runs once)")
    _check_file_names(grid.models)


def _check_file_names(models: tuple[str, ...]) -> None:
    """Two models whose cells would have one file name (``openai-compatible:org/m`` and
    ``openai-compatible:org_m``: ':', '/' and '\\' become '_'; ``Org/M`` and ``org/m`` on a file
    system that does not tell case apart): the second cell's record, evidence, baseline and
    figure would overwrite the first's, and the report show one cell where two ran."""
    from harness.record import file_stem

    seen: dict[str, str] = {}
    for name in models:
        other = seen.setdefault(file_stem(name).casefold(), name)
        if other != name:
            raise pytest.UsageError(
                f"models {other!r} and {name!r} would write their cells to the same files "
                f"({file_stem(name)}-...; ':', '/' and '\\' become '_' in a file name, and a file "
                "system may not tell case apart): serve one of them under another name (vLLM's "
                "--served-model-name)")


def check_settings(config: pytest.Config) -> None:
    """The settings given (command line, ini), checked before collection: an unknown model,
    strategy, corpus option or strategy argument (with the closest names), a corpus root that
    does not exist, a bad --shard or tolerance. One usage error, exit code 4."""
    given = GridConfig(models=(), strategies=(), datasets=())
    resolved = resolved_grid(config, given, cache=False)
    check_grid(dataclasses.replace(resolved, verifier=setting(config, "verifier") or given.verifier))
    for corpus, root in corpus_roots(config).items():
        why = None if root is None else not_a_folder(root)
        if root is not None and why is not None:
            flag = f"--{corpus.replace('_', '-')}-root"
            raise pytest.UsageError(f"{flag} {shown(root)}: {why} (the {corpus} corpus root)")
    tolerance = setting(config, "gate_tolerance")
    if not tolerance >= 0:  # NaN, too: it would have passed every gate
        raise pytest.UsageError(f"--gate-tolerance must be a number of at least 0, not {tolerance}")
    alpha = setting(config, "gate_alpha")
    if not 0 < alpha <= 0.5:
        raise pytest.UsageError(f"--gate-alpha must be above 0 and at most 0.5, not {alpha}")
    if config.getoption("--shard"):
        from harness.pytest_plugin.scheduling import parse_shard

        parse_shard(config.getoption("--shard"))
    _check_plan(config)
    _check_environment()


def _check_environment() -> None:
    """The harness's environment variables (chunk sizes, reader threads, the clip limit, the
    GPUs, loading models at their first call)."""
    from harness._env import env_flag, positive_int
    from harness.data.audio import AudioLimits
    from harness.pytest_plugin.scheduling import gpu_ids

    try:
        for name in ("HARNESS_CHUNK", "HARNESS_CHUNK_MIB", "HARNESS_CACHE_CHUNK", "HARNESS_READERS"):
            positive_int(name, 1)
        env_flag("HARNESS_DEFER_LOADING", True)
        AudioLimits.from_env()
        gpu_ids()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _check_plan(config: pytest.Config) -> None:
    """``plan`` is on or off; on, it needs each model's cells on a corpus on one worker."""
    plan = setting(config, "plan")
    if plan == "on" and config.getoption("numprocesses", default=None):
        from harness.pytest_plugin.scheduling import auto_group_by, gpu_ids

        dist = config.getoption("dist", default="loadgroup")
        if dist != "loadgroup":  # xdist's own scheduler then spreads a model's cells
            raise pytest.UsageError(f"--plan on with --dist {dist}: a model's cells on a corpus "
                                    "would be spread over workers, each running the whole plan; "
                                    "use --dist loadgroup (the project's default)")
        by = setting(config, "group_by")
        by = auto_group_by(len(gpu_ids())) if by == "auto" else by
        if by not in ("model-dataset", "model"):
            raise pytest.UsageError(f"--plan on with --group-by {by}: a model's cells on a corpus "
                                    "would be spread over workers, each running the whole plan; "
                                    "use --group-by model-dataset or model")


def check_run_options(config: pytest.Config) -> None:
    """What would only fail after cells have computed, refused before any runs: report or cache
    folders that cannot be written (a file in the way, a read-only disk), a damaged cache, a
    cache on a network file system."""
    for name in ("report_dir", "cache_dir"):
        folder = run_folder(config, name)
        probe = folder / f".harness-write-check-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            why = exc.strerror or str(exc)
            if isinstance(exc, FileExistsError):  # mkdir's word for a file (or link) in the way
                why = "something that is not a folder is there"
            raise pytest.UsageError(f"--{name.replace('_', '-')} {shown(folder)} cannot be written: "
                                    f"{why}") from None
    from harness.cache import CacheError, GenerationCache

    try:  # a damaged or foreign cache file: refused now, not after the first cell computed
        GenerationCache(run_folder(config, "cache_dir") / "generations.sqlite").close()
    except CacheError as exc:
        raise pytest.UsageError(str(exc)) from None
