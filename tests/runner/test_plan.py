"""A model's plan fills the cache so that every strategy's cell then gives what it gives alone;
each clip is read once for all the strategies; a backend that takes several decodings at once
is asked for them together."""

import json

import pytest

from harness.cache import GenerationCache
from harness.data import load_dataset
from harness.data.clips import MEMO
from harness.models.api import Capabilities
from harness.runner.evaluate import evaluate
from harness.runner.plan import run_plan
from harness.strategies import StrategyConfig, strategy_names
from tests.fakes import ScriptedModel
from tests.helpers import watch_clip_reads
from tests.strategies.test_stream import answers, model


def comparable(record):
    data = record.to_json()
    for key in ("seconds", "gpu_seconds"):
        data.pop(key)
    data["meta"].pop("finished")
    data["meta"].pop("generations")  # the plan computed what the cell alone computes itself
    return json.dumps(data, sort_keys=True), list(record.evidence.json_lines())


def test_cells_after_the_plan_are_the_cells_run_alone(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from harness.models import get_model

    tiny = get_model("tiny-qwen2-audio")
    dataset, config = load_dataset("crema_d")[:5], StrategyConfig(max_new_tokens=24)
    planned = GenerationCache(tmp_path / "planned.sqlite")
    report = run_plan(tiny, dataset, strategy_names(), config=config, cache=planned, verifier=tiny)
    assert set(report.seconds) == set(strategy_names()) and not report.left_out
    rows = len(planned)
    for name in strategy_names():
        after = evaluate(tiny, dataset, name, verifier=tiny, config=config, cache=planned,
                         n_resamples=20)
        alone = evaluate(tiny, dataset, name, verifier=tiny, config=config, n_resamples=20,
                         cache=GenerationCache(tmp_path / f"{name}.sqlite"))
        assert comparable(after) == comparable(alone), name
    assert len(planned) == rows  # the cells found everything the plan had stored


def test_each_clip_is_read_once_for_every_strategy(monkeypatch):
    dataset = load_dataset("crema_d")
    MEMO.clear()  # its clips new to this process: each read once, for its hash and samples
    reads = watch_clip_reads(monkeypatch)
    report = run_plan(model(), dataset, ["base", "bon", "w-bon", "sample-n", "readout"],
                      config=StrategyConfig(), cache=GenerationCache())
    assert sorted(reads.decoded) == sorted(item.audio_path for item in dataset)
    assert reads.counts() == {"decoded": len(dataset), "hashed": len(dataset)}
    n = len(dataset)  # asked one strategy at a time: w-bon finds bon's beams in the cache
    assert report.computed == {"base": n, "bon": n, "w-bon": 0, "sample-n": n, "readout": n}


def test_a_plan_hands_each_request_its_own_clip_where_some_answers_are_cached(tmp_path):
    from tests.fakes import OwnClipModel
    from tests.helpers import corpus_copy

    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    run_plan(model(), dataset[:13], strategy_names(), config=StrategyConfig(), cache=cache,
             verifier=model())
    checked = OwnClipModel(answers, label_scores=model().label_scores)
    report = run_plan(checked, dataset, strategy_names(), config=StrategyConfig(), cache=cache,
                      verifier=OwnClipModel(answers, name="own-clip-verifier"))
    assert not report.left_out and checked.requests >= len(dataset) - 13


class TogetherModel(ScriptedModel):
    """Takes several decodings at once; counts what it is asked."""

    def __init__(self):
        super().__init__(answers)
        self.together, self.alone = [], 0

    def generate_many(self, requests, decodings):
        self.together.append((len(requests), len(decodings)))
        return [ScriptedModel.generate(self, requests, d) for d in decodings]

    def generate(self, requests, decoding):
        self.alone += 1
        return ScriptedModel.generate(self, requests, decoding)


def test_a_backend_that_takes_decodings_together_is_asked_once_per_chunk(tmp_path):
    dataset = load_dataset("crema_d")
    cache = GenerationCache(tmp_path / "cache.sqlite")
    together = TogetherModel()
    report = run_plan(together, dataset, ["base", "bon", "w-bon", "sample-n", "cot"],
                      config=StrategyConfig(), cache=cache)
    assert together.together == [(len(dataset), 3)]  # greedy, beam-5, sample-5: one call
    assert together.alone == 1  # cot's prompt is its own
    assert set(report.seconds) == {"base", "bon", "w-bon", "sample-n", "cot"}
    n = len(dataset)  # a decoding's calls are the first strategy's to ask for it: bon's beams
    assert report.computed == {"base": n, "bon": n, "w-bon": 0, "sample-n": n, "cot": n}
    again = ScriptedModel(answers)
    for name in ("base", "bon", "w-bon", "sample-n"):
        alone = evaluate(model(), dataset, name, n_resamples=10)
        assert evaluate(again, dataset, name, cache=cache, n_resamples=10).metrics == alone.metrics
    assert again.requests == 0


def test_a_shared_prefill_that_raises_leaves_each_strategy_to_ask_for_its_own(tmp_path):
    class FailingTogether(TogetherModel):
        def generate_many(self, requests, decodings):
            raise RuntimeError("out of memory in the shared prefill")

    dataset = load_dataset("crema_d")
    cache = GenerationCache(tmp_path / "cache.sqlite")
    failing = FailingTogether()
    with pytest.warns(UserWarning, match="the shared prefill of 26 clips failed .RuntimeError: "
                                         "out of memory in the shared prefill.; each strategy asks"):
        run_plan(failing, dataset, ["base", "bon"], config=StrategyConfig(), cache=cache)
    assert failing.alone == 2  # greedy and beam-5, each asked for itself
    for name in ("base", "bon"):
        assert evaluate(failing, dataset, name, cache=cache, n_resamples=10).metrics == evaluate(
            model(), dataset, name, n_resamples=10).metrics


def test_a_shared_prefill_answering_one_short_stops_the_run_naming_the_model(tmp_path):
    from harness.models import ModelFailed

    class Short(TogetherModel):
        def generate_many(self, requests, decodings):
            return [generations[:-1] for generations in super().generate_many(requests, decodings)]

    with pytest.raises(ModelFailed, match="scripted returned 25 answers for 26 requests"):
        run_plan(Short(), load_dataset("crema_d"), ["base", "bon"], config=StrategyConfig(),
                 cache=GenerationCache(tmp_path / "cache.sqlite"))

    class OneDecodingShort(TogetherModel):
        def generate_many(self, requests, decodings):
            return super().generate_many(requests, decodings)[:-1]

    with pytest.raises(ModelFailed, match="scripted's generate_many answered 1 decodings where 2 "
                                          "were asked"):
        run_plan(OneDecodingShort(), load_dataset("crema_d"), ["base", "bon"],
                 config=StrategyConfig(), cache=GenerationCache(tmp_path / "other.sqlite"))


def test_a_strategy_the_model_cannot_run_is_left_out_with_its_reason():
    no_beams = ScriptedModel(answers, capabilities=Capabilities(beam_search=False))
    report = run_plan(no_beams, load_dataset("crema_d")[:4], ["base", "bon"],
                      config=StrategyConfig(), cache=GenerationCache())
    assert set(report.seconds) == {"base"} and "beam_search" in report.left_out["bon"]


def test_verifier_strategies_without_a_verifier_are_left_out():
    report = run_plan(model(), load_dataset("crema_d")[:3], ["alm-v", "base"],
                      config=StrategyConfig(), cache=GenerationCache())
    assert "verifier" in report.left_out["alm-v"] and "base" in report.seconds


def test_progress_is_said_after_each_chunk_and_a_strategy_refused_midway_is_asked_once(monkeypatch):
    from harness.strategies import StrategyUnsupported, get_strategy

    class Refusing(type(get_strategy("base"))):
        name = "refusing"
        calls = 0

        def results(self, model, requests, context):
            Refusing.calls += 1
            raise StrategyUnsupported("not on this backend after all")

    monkeypatch.setenv("HARNESS_CHUNK", "4")
    done = []
    report = run_plan(model(), load_dataset("crema_d")[:10], ["base", Refusing()],
                      config=StrategyConfig(), cache=GenerationCache(), progress=done.append)
    assert done == [4, 8, 10] and Refusing.calls == 1
    assert report.left_out == {"refusing": "not on this backend after all"}
    assert set(report.computed) == {"base", "refusing"}


def test_a_shared_prefill_whose_backend_is_gone_stops_the_run(tmp_path):
    import time

    from harness.models import ModelUnavailable

    class Gone(TogetherModel):
        def generate_many(self, requests, decodings):
            raise ModelUnavailable("the server went away")

    with pytest.raises(ModelUnavailable, match="the server went away"):
        run_plan(Gone(), load_dataset("crema_d"), ["base", "bon"], config=StrategyConfig(),
                 cache=GenerationCache(tmp_path / "cache.sqlite"))
    start = time.perf_counter()
    report = run_plan(TogetherModel(), load_dataset("crema_d"), ["base", "bon"],
                      config=StrategyConfig(), cache=GenerationCache(tmp_path / "again.sqlite"))
    assert 0 <= sum(report.seconds.values()) <= time.perf_counter() - start


def test_a_shared_prefill_never_replaces_what_the_cache_holds(tmp_path):
    def anger(request, decoding):
        return [('{"Anger": 1}', -1.0)] * decoding.num_candidates

    dataset = load_dataset("crema_d")
    cache = GenerationCache(tmp_path / "cache.sqlite")
    run_plan(ScriptedModel(anger), dataset, ["base"], config=StrategyConfig(), cache=cache)
    together = TogetherModel()  # other answers, for greedy too: asked with beam-5's
    run_plan(together, dataset, ["base", "bon"], config=StrategyConfig(), cache=cache)
    assert together.together == [(len(dataset), 2)]
    again = ScriptedModel(anger)
    assert evaluate(again, dataset, "base", cache=cache, n_resamples=10).metrics == evaluate(
        ScriptedModel(anger), dataset, "base", n_resamples=10).metrics
    assert again.requests == 0


def test_a_plan_reads_ahead_the_clips_it_needs_and_none_once_all_is_cached(monkeypatch, tmp_path):
    dataset, strategies = load_dataset("crema_d"), ["base", "bon", "sample-n"]
    cache = GenerationCache(tmp_path / "cache.sqlite")  # the clips' facts known after this:
    run_plan(model(), dataset, ["readout"], config=StrategyConfig(), cache=cache)
    reads = watch_clip_reads(monkeypatch)  # each answer missing: each clip read ahead, once
    run_plan(TogetherModel(), dataset, strategies, config=StrategyConfig(), cache=cache)
    assert sorted(reads.decoded) == sorted(item.audio_path for item in dataset)
    again, together = watch_clip_reads(monkeypatch), TogetherModel()
    report = run_plan(together, dataset, strategies, config=StrategyConfig(), cache=cache)
    assert again.counts() == {"decoded": 0, "hashed": 0}
    assert report.computed == dict.fromkeys(strategies, 0)
    assert together.together == [] and together.alone == 0


def test_the_shared_prefills_seconds_are_shared_out_among_its_strategies(tmp_path):
    import time

    class Slow(TogetherModel):
        def generate_many(self, requests, decodings):
            time.sleep(0.4)
            return super().generate_many(requests, decodings)

    start = time.perf_counter()
    report = run_plan(Slow(), load_dataset("crema_d"), ["base", "bon"], config=StrategyConfig(),
                      cache=GenerationCache(tmp_path / "cache.sqlite"))
    assert sum(report.seconds.values()) <= time.perf_counter() - start
    assert min(report.seconds.values()) >= 0.2  # half of the prefill each, at least
