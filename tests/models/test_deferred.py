"""A model loaded at its first model call: described until then, checked when it loads, its
loading kept out of the cells' seconds, its failure the cell's."""

import contextlib
import dataclasses
import time

import pytest

from harness import evaluate
from harness.cache import GenerationCache
from harness.data import load_dataset
from harness.models import ModelFailed, ModelNotLoaded, ModelUnavailable, registry
from harness.models.api import ModelInfo
from harness.models.deferred import DeferredModel, close_model, deferred_model, work_clock
from harness.runner.grid import Cell, GridConfig
from harness.runner.worker import CellSkipped, GridWorker
from tests.fakes import ScriptedModel

ANSWER = '{"neutral": 0.5, "happy": 0.2, "sad": 0.2, "angry": 0.1}'


class Loads:
    """A factory that counts its loads, taking ``seconds`` each, or raising ``error``."""

    def __init__(self, name="described", seconds=0.0, error=None, info=None):
        self.name, self.seconds, self.error, self.info, self.count = name, seconds, error, info, 0

    def __call__(self, **config):
        self.count += 1
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        model = ScriptedModel(lambda r, d: [(ANSWER, -1.0)] * d.num_candidates, self.name)
        if self.info is not None:
            model.info = self.info
        return model


def described(name="described"):
    return ModelInfo(name, "test")


@pytest.fixture
def entries(monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    monkeypatch.delenv("HARNESS_DEFER_LOADING", raising=False)

    def register(loads, describe=None):
        if describe is None:
            def describe(**config):
                return described(loads.name)
        registry.register(loads.name, describe=describe)(loads)
        return loads

    return register


def test_until_a_call_needs_it_the_model_is_its_description(entries):
    loads = entries(Loads())
    model = deferred_model("described")
    assert isinstance(model, DeferredModel) and model.info == described()
    assert callable(model.generate_many) and hasattr(model, "label_logprobs")
    assert loads.count == 0 and not model.loaded
    model.generate([], _decoding())
    model.generate([], _decoding())
    assert loads.count == 1 and model.loaded
    assert model.calls == 2  # anything else asked of it is the loaded backend's


def test_without_a_description_or_when_told_so_the_model_loads_at_once(entries, monkeypatch):
    loads = entries(Loads(), describe=lambda **config: None)
    assert isinstance(deferred_model("described"), ScriptedModel) and loads.count == 1
    other = entries(Loads("other"))
    monkeypatch.setenv("HARNESS_DEFER_LOADING", "Off")
    assert isinstance(deferred_model("other"), ScriptedModel) and other.count == 1
    monkeypatch.setenv("HARNESS_DEFER_LOADING", "later")
    with pytest.raises(ValueError, match=r"^HARNESS_DEFER_LOADING='later': must be true or false"):
        deferred_model("other")


@pytest.mark.parametrize("error, raised, message", [
    (RuntimeError("weights cut short"), ModelNotLoaded,
     "described could not be loaded: RuntimeError: weights cut short"),
    (ImportError("No module named 'transformers'"), ModelUnavailable,
     "described: No module named 'transformers'"),
    (ModelUnavailable("described: no GPU"), ModelUnavailable, "described: no GPU")])
def test_a_load_that_fails_is_said_by_every_call_without_loading_again(entries, error, raised,
                                                                       message):
    loads = entries(Loads(error=error))
    model = deferred_model("described")
    for _ in range(2):
        with pytest.raises(raised) as failed:
            model.generate([], _decoding())
        assert str(failed.value) == message and failed.value is model.failure
    assert loads.count == 1


def test_a_model_unlike_its_description_is_refused_but_its_device_is_its_own(entries):
    entries(Loads(info=dataclasses.replace(described(), dtype="bfloat16")))
    model = deferred_model("described")
    with pytest.raises(ModelFailed, match=r"^described loaded unlike its description \(dtype "
                                          r"'' -> 'bfloat16'\): its answers would be cached"):
        model.generate([], _decoding())
    entries(Loads("on-gpu", info=dataclasses.replace(described("on-gpu"), device="cuda:1")))
    model = deferred_model("on-gpu")
    model.generate([], _decoding())
    assert model.info.device == "cuda:1"


def test_a_cell_with_every_answer_cached_never_loads_its_model_and_loading_is_no_cells_time(
        entries, tmp_path):
    loads = entries(Loads(seconds=0.5))
    dataset = load_dataset("crema_d")
    first = evaluate("described", dataset, "bon", cache=tmp_path / "c.sqlite", n_resamples=50)
    assert loads.count == 1 and first.seconds < 0.5
    again = evaluate("described", dataset, "bon", cache=tmp_path / "c.sqlite", n_resamples=50)
    assert loads.count == 1 and again.metrics == first.metrics
    assert again.meta["generations"] == {"computed": 0, "from_cache": len(dataset)}


def test_the_work_clock_stops_while_a_model_loads(entries):
    entries(Loads(seconds=0.3))
    model = deferred_model("described")
    start, wall = work_clock(model), time.perf_counter()
    model.generate([], _decoding())
    assert time.perf_counter() - wall >= 0.3 > work_clock(model) - start


def test_in_the_grid_a_load_that_fails_fails_the_cell_and_one_that_cannot_run_skips_it(
        entries, tmp_path):
    entries(Loads(error=RuntimeError("weights cut short")))
    entries(Loads("no-torch", error=ImportError("No module named 'torch'")))
    grid = GridConfig(models=("described", "no-torch"), datasets=("crema_d",))
    worker = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
    try:
        for strategy in ("base", "bon"):  # each of the model's cells, the load tried once
            with pytest.raises(ModelNotLoaded, match=r"^described could not be loaded: "
                                                     r"RuntimeError: weights cut short \(raised"):
                worker.run(Cell("described", "crema_d", strategy))
            with pytest.raises(CellSkipped, match=r"^no-torch: No module named 'torch'$"):
                worker.run(Cell("no-torch", "crema_d", strategy))
        assert not list((tmp_path / "run").glob("cells/*.json"))
    finally:
        worker.close()


def test_the_grid_worker_readies_a_model_s_cores_just_before_loading_it(entries, tmp_path):
    said = []
    loads = entries(Loads())
    entries(Loads("other"))

    def factory(**config):
        said.append("loaded")
        return loads(**config)

    registry.register("described", describe=lambda **config: described())(factory)
    worker = GridWorker(tmp_path / "run", tmp_path / "cache",
                        GridConfig(models=("described",), datasets=("crema_d",)))
    worker.before_load = lambda: said.append("cores")
    try:
        worker.run(Cell("described", "crema_d", "base"))
        worker.run(Cell("described", "crema_d", "bon"))
    finally:
        worker.close()
    assert said == ["cores", "loaded"]


def test_a_verifier_of_its_own_that_cannot_load_leaves_its_strategies_out_of_the_plan(
        entries, tmp_path):
    from harness.runner.plan import run_plan
    from harness.strategies import StrategyConfig

    entries(Loads())
    entries(Loads("judge", error=RuntimeError("weights cut short")))
    with contextlib.closing(GenerationCache(tmp_path / "c.sqlite")) as cache:
        report = run_plan(deferred_model("described"), load_dataset("crema_d"), ["base", "alm-v"],
                          config=StrategyConfig(), cache=cache, verifier=deferred_model("judge"))
    assert set(report.left_out) == {"alm-v"} and "weights cut short" in report.left_out["alm-v"]
    assert report.computed["base"] > 0


def _decoding():
    from harness.models.api import Decoding

    return Decoding()


RESCORE = """
import json, sys

class Absent:  # neither torch nor transformers can be imported here
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, Absent())
from harness import evaluate
from harness.data import load_dataset
record = evaluate("tiny-qwen2-audio", load_dataset("crema_d"), "bon", cache=sys.argv[1],
                  n_resamples=50)
print(json.dumps({"metrics": record.to_json()["metrics"], "generations": record.meta["generations"],
                  "imported": sorted({"torch", "transformers"} & set(sys.modules))}))
"""


def test_a_cache_filled_by_the_tiny_model_scores_its_cell_again_where_torch_is_not(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("transformers", reason="the hf extra is not installed")
    dataset = load_dataset("crema_d")
    first = evaluate("tiny-qwen2-audio", dataset, "bon", cache=tmp_path / "c.sqlite",
                     n_resamples=50)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", RESCORE, str(tmp_path / "c.sqlite")], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    again = json.loads(out.stdout.splitlines()[-1])
    assert again["generations"] == {"computed": 0, "from_cache": len(dataset)}
    assert again["imported"] == []
    assert again["metrics"] == json.loads(json.dumps(first.to_json()["metrics"]))


class Closes(Loads):
    """Loads a model that counts its ``close`` calls (in ``closed``), failing them when told."""

    def __init__(self, name="described", fails=False):
        super().__init__(name)
        self.closed, self.fails = [], fails

    def __call__(self, **config):
        model = super().__call__(**config)
        owner = self

        class Closing(type(model)):
            def close(self):
                owner.closed.append(self.info.name)
                if owner.fails:
                    raise OSError("the socket is gone")

        model.__class__ = Closing
        return model


def test_closing_a_deferred_model_closes_it_if_loaded_and_never_loads_it(entries):
    loads = entries(Closes())
    model = deferred_model("described")
    model.close()
    assert loads.count == 0 and loads.closed == []  # not loaded to be closed
    model.generate([], _decoding())
    model.close()
    assert loads.count == 1 and loads.closed == ["described"]
    close_model(ScriptedModel(lambda r, d: [], "plain"))  # a model with no close: nothing to do


def test_the_grid_worker_closes_the_models_it_loaded_and_warns_of_one_that_fails(entries, tmp_path):
    used, failing = entries(Closes()), entries(Closes("failing", fails=True))
    unused = entries(Closes("unused"))
    grid = GridConfig(models=("described", "failing", "unused"), datasets=("crema_d",), limit=2)
    worker = GridWorker(tmp_path / "run", tmp_path / "cache", grid)
    worker.run(Cell("described", "crema_d", "base"))
    worker.run(Cell("failing", "crema_d", "base"))
    worker.model("unused")  # described, never loaded
    with pytest.warns(UserWarning, match="failing: closing it failed: OSError: the socket is gone"):
        worker.close()
    assert used.closed == ["described"] and failing.closed == ["failing"]
    assert unused.count == 0 and unused.closed == []
