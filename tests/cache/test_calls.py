"""``harness.cache.calls``: generations cached under a key that covers all that can change an
answer, shared by strategies, kept across a killed run."""

import sqlite3

import numpy as np
import pytest

from harness.cache import GenerationCache, cached_generate, generation_key
from harness.data import load_dataset
from harness.models.api import Decoding, Request
from harness.strategies import run_strategy
from tests.fakes import ScriptedModel


def answer(request, decoding):
    return [('{"Anger": 0.5, "Sadness": 0.5}', -1.0 - i) for i in range(decoding.num_candidates)]


def test_round_trip_and_persistence(tmp_path):
    path = tmp_path / "cache.sqlite"
    model = ScriptedModel(answer)
    reqs = [Request(np.full(160, i, np.float32), f"prompt {i}", f"item{i}") for i in range(3)]
    first = cached_generate(model, reqs, Decoding(), GenerationCache(path))
    again = cached_generate(model, reqs, Decoding(), GenerationCache(path))
    assert model.requests == 3 and again == first
    cached_generate(model, reqs, Decoding(seed=1), GenerationCache(path))  # seed is in the key
    assert model.requests == 6
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_key_covers_model_revision_prompt_audio_and_decoding():
    from dataclasses import replace

    from harness.cache import labels_key

    model = ScriptedModel(answer)
    base = Request(np.zeros(10, np.float32), "p")
    other_info = {"name": ScriptedModel(answer, name="other").info,
                  "revision": replace(model.info, revision="sha256:new-weights"),
                  "dtype": replace(model.info, dtype="bfloat16"),
                  "options": replace(model.info, options=(("attention", "sdpa"),))}
    keys = {generation_key(model.info, base, Decoding()),
            generation_key(model.info, Request(np.ones(10, np.float32), "p"), Decoding()),
            generation_key(model.info, Request(np.zeros(10, np.float32), "q"), Decoding()),
            generation_key(model.info, base, Decoding(max_new_tokens=5)),
            *(generation_key(info, base, Decoding()) for info in other_info.values())}
    assert len(keys) == 4 + len(other_info)
    # a label read-out's key: the same parts, with the labels scored in place of the decoding
    label_keys = {labels_key(model.info, base, ["a", "b"]),
                  labels_key(model.info, base, ["a", "c"]),
                  labels_key(model.info, base, ["b", "a"]),  # their order is each score's place
                  labels_key(model.info, Request(np.ones(10, np.float32), "p"), ["a", "b"]),
                  labels_key(model.info, Request(np.zeros(10, np.float32), "q"), ["a", "b"]),
                  *(labels_key(info, base, ["a", "b"]) for info in other_info.values())}
    assert len(label_keys) == 5 + len(other_info) and not label_keys & keys


def test_failed_generations_are_not_cached():
    from harness.models.api import Generation

    class Flaky(ScriptedModel):
        def generate(self, requests, decoding):
            self.requests += len(requests)
            return [Generation(error="HTTP 500")] * len(requests)

    cache = GenerationCache()
    flaky = Flaky(answer)
    reqs = [Request(np.zeros(10, np.float32), "p")]
    assert cached_generate(flaky, reqs, Decoding(), cache)[0].error == "HTTP 500"
    cached_generate(flaky, reqs, Decoding(), cache)
    assert flaky.requests == 2 and len(cache) == 0


def test_strategies_share_runs_and_a_rerun_computes_nothing(tmp_path):
    dataset = load_dataset("crema_d")
    model = ScriptedModel(answer)
    cache = GenerationCache(tmp_path / "c.sqlite")
    run_strategy("bon", model, dataset, cache=cache)
    calls = model.requests
    run_strategy("w-bon", model, dataset, cache=cache)  # same beam run
    assert model.requests == calls == len(dataset)
    resumed = GenerationCache(tmp_path / "c.sqlite")
    run_strategy("bon", model, dataset, cache=resumed)
    assert model.requests == calls and resumed.hits == len(dataset) and resumed.misses == 0


def test_a_run_killed_mid_way_keeps_its_finished_chunks(tmp_path):
    class Dies(ScriptedModel):
        def generate(self, requests, decoding):
            if self.calls == 2:
                raise KeyboardInterrupt  # stands in for a kill between two chunks
            return super().generate(requests, decoding)

    reqs = [Request(np.full(10, i, np.float32), "p", f"i{i}") for i in range(10)]
    dying = Dies(answer)
    with pytest.raises(KeyboardInterrupt):
        cached_generate(dying, reqs, Decoding(), GenerationCache(tmp_path / "c.sqlite"), chunk=4)
    model = ScriptedModel(answer)
    cache = GenerationCache(tmp_path / "c.sqlite")
    cached_generate(model, reqs, Decoding(), cache, chunk=4)
    assert cache.hits == 8 and model.requests == 2


def test_everything_that_can_change_an_answer_is_in_its_key(monkeypatch):
    """dtype, the long-audio policy, the backend's version, constrained decoding, the beams and the
    prompt set each give another key (a cache miss); tau and alpha change no generation (they
    weigh the same candidates), so they are in the cell's inputs instead."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from dataclasses import replace

    from harness.data import load_dataset
    from harness.models.hf_qwen2_audio import Qwen2AudioBackend
    from harness.models.qwen2_audio_models import tiny_qwen2_audio
    from harness.prompts import base_prompt
    from harness.strategies import StrategyConfig, get_strategy

    dataset = load_dataset("crema_d")
    item = next(iter(dataset))
    request = Request(np.zeros(1600, np.float32), base_prompt("crema_d", item.transcript, dataset.labels),
                      item.id, "audio")
    model = tiny_qwen2_audio()
    beams = get_strategy("bon").decoding(StrategyConfig(), dataset.labels)
    reference = generation_key(model.info, request, beams)
    arch = Qwen2AudioBackend.ARCHITECTURE
    monkeypatch.setattr(Qwen2AudioBackend, "ARCHITECTURE", replace(arch, version=arch.version + 1))
    variants = {
        "dtype": generation_key(tiny_qwen2_audio(dtype="bfloat16").info, request, beams),
        "long_audio": generation_key(model.with_options(long_audio="chunk").info, request, beams),
        "backend version": generation_key(tiny_qwen2_audio().info, request, beams),
        "constrained": generation_key(model.info, request, get_strategy("bon").decoding(
            StrategyConfig(constrained=True), dataset.labels)),
        "beams": generation_key(model.info, request, get_strategy("bon").decoding(
            StrategyConfig(beams=7), dataset.labels)),
        "prompt set": generation_key(model.info, Request(request.audio, base_prompt(
            "crema_d", item.transcript, dataset.labels, prompts="harness-v0"), item.id, "audio"), beams),
    }
    assert reference not in variants.values() and len(set(variants.values())) == len(variants)
    for same in (StrategyConfig(tau=2.0), StrategyConfig(alpha="mean")):
        assert generation_key(model.info, request, get_strategy("w-bon").decoding(same, dataset.labels)) \
            == reference


def test_a_stored_candidate_keeps_every_field_and_keys_made_together_are_the_same():
    from dataclasses import fields

    from harness.cache import generation_keys, labels_key, labels_keys
    from harness.cache.calls import _decode, _encode
    from harness.models.api import Candidate, Generation

    generation = Generation((Candidate("x", 1, -0.5, finite=False),), usage={"prompt_tokens": 3})
    stored = _encode(generation)
    assert set(stored["candidates"][0]) == {f.name for f in fields(Candidate)}
    assert _decode(stored) == generation
    model = ScriptedModel(lambda r, d: [("x", 0.0)])
    requests = [Request(np.zeros(4, dtype=np.float32) + n, f"p{n}") for n in range(3)]
    assert generation_keys(model.info, requests, Decoding()) == [
        generation_key(model.info, r, Decoding()) for r in requests]
    assert labels_keys(model.info, requests, ["a"]) == [labels_key(model.info, r, ["a"])
                                                        for r in requests]


def test_progress_counts_the_cached_items_first_then_each_stored_chunk(monkeypatch):
    monkeypatch.delenv("HARNESS_CACHE_CHUNK", raising=False)
    model = ScriptedModel(answer)
    reqs = [Request(np.full(4, i, np.float32), "p", f"i{i}") for i in range(300)]
    cache, told = GenerationCache(), []
    cached_generate(model, reqs[:3], Decoding(), cache)
    cached_generate(model, reqs[:10], Decoding(), cache, chunk=4, progress=told.append)
    assert told == [7, 10] and model.requests == 10  # 3 from the cache, then chunks of 4 and 3
    told.clear()
    cached_generate(model, reqs, Decoding(), None, progress=told.append)
    assert told == [256, 300]  # the default chunk


def _label_rows(request):
    from harness.models.api import LabelScores

    rows = {"noted": LabelScores(np.array([-1.0, -2.0]), notes=("audio cut to 30 s",)),
            "nan": LabelScores(np.array([np.nan, -1.0])),
            "failed": LabelScores.failed(2, "HTTP 500")}
    return rows.get(request.prompt, LabelScores(np.array([-0.5, -3.0])))


def test_label_scores_are_cached_with_their_notes_and_failed_rows_are_asked_again():
    from harness.cache import cached_label_logprobs

    model = ScriptedModel(answer, label_scores=_label_rows)
    reqs = [Request(np.full(4, i, np.float32), p) for i, p in enumerate(
        ["plain", "noted", "nan", "failed"])]
    cache, told = GenerationCache(), []
    first = cached_label_logprobs(model, reqs, ["a", "b"], cache, progress=told.append)
    assert told == [4] and model.requests == 4 and len(cache) == 2  # no NaN, no error stored
    again = cached_label_logprobs(model, reqs, ["a", "b"], cache, progress=told.append)
    assert told == [4, 4] and model.requests == 6 and cache.hits == 2  # the two failed, again
    assert [r.notes for r in again] == [(), ("audio cut to 30 s",), (), ()]
    np.testing.assert_array_equal(again[0].logprobs, first[0].logprobs)
    assert (again[3].error, again[2].error) == ("HTTP 500", None)
    told.clear()
    uncached = cached_label_logprobs(model, reqs, ["a", "b"], None, progress=told.append)
    assert told == [4] and model.requests == 10 and uncached[1].notes == again[1].notes


def test_a_stored_row_of_another_shape_is_a_miss_and_computed_again():
    from harness.cache import cached_label_logprobs, labels_key
    from harness.cache.calls import _decode

    model = ScriptedModel(answer, label_scores=_label_rows)
    request = Request(np.zeros(4, np.float32), "plain")
    cache = GenerationCache()
    for row in ([-1.0, -2.0, -3.0], {"logprobs": [-1.0], "notes": []}):
        cache.put_many("labels", "scripted", [(labels_key(model.info, request, ["a", "b"]), row)])
        got = cached_label_logprobs(model, [request], ["a", "b"], cache)
        assert got[0].logprobs.tolist() == [-0.5, -3.0]
    assert cache.damaged == 2 and model.requests == 2
    one = {"text": "x", "n_tokens": 1, "logprob": 0.0, "finite": True}
    for change, says in (({"text": 3}, "candidate 0: its text is a int"),
                         ({"n_tokens": "1"}, "candidate 0: its token count is a str"),
                         ({"n_tokens": 1.0}, "candidate 0: its token count is a float"),
                         ({"logprob": None}, "candidate 0: its log-likelihood is a NoneType"),
                         ({"logprob": True}, "candidate 0: its log-likelihood is a bool")):
        with pytest.raises(ValueError, match=f"^{says}$"):
            _decode({"candidates": [{**one, **change}], "usage": {}})
    for usage, says in (([], "its usage is not a dict"), ({"cost_usd": "0.1"}, "its usage not numbers"),
                        ({"prompt_tokens": [3]}, "its usage not numbers")):
        with pytest.raises(ValueError, match=says):
            _decode({"candidates": [one], "usage": usage})
    with pytest.raises(ValueError, match="a note is not a string"):
        _decode({"candidates": [one], "usage": {}, "notes": [5]})
    for served in (None, 5, ["gpt-4o"], {}, "x" * 121):
        with pytest.raises(ValueError, match="its served_by is not a string of at most 120"):
            _decode({"candidates": [one], "usage": {}, "served_by": served})
    with pytest.raises(ValueError, match="'finite' is not true or false"):  # an invalid candidate else
        _decode({"candidates": [{**one, "finite": None}], "usage": {}})
    with pytest.raises(ValueError, match="its candidates are not a list"):  # no candidate else
        _decode({"candidates": {}, "usage": {}})
    assert _decode({"candidates": [], "usage": {}}).candidates == ()  # all filtered: kept
    assert _decode({"candidates": [one], "usage": {"cost_usd": None, "prompt_tokens": 7}}).usage == {
        "cost_usd": None, "prompt_tokens": 7}


def test_a_generation_keeps_its_notes_in_the_cache():
    from harness.cache.calls import _decode, _encode
    from harness.models.api import Candidate, Generation

    noted = Generation((Candidate("x", 1, -0.5),), notes=("audio cut to 30 s",))
    assert _decode(_encode(noted)) == noted and "notes" not in _encode(Generation(()))


def test_a_generation_keeps_the_snapshot_that_gave_it_and_the_cache_counts_them_read_or_computed():
    from harness.cache.calls import _decode, _encode
    from harness.models.api import Candidate, Generation

    named = Generation((Candidate("x", 1, -0.5),), served_by="gpt-4o-audio-preview-2024-12-17")
    assert _decode(_encode(named)) == named and "served_by" not in _encode(Generation(()))
    snapshots = iter(["snap-1", "snap-1", "snap-2"])
    model = ScriptedModel(answer)
    model.generate = lambda rs, d: [Generation((Candidate("x", 1, -0.5),), served_by=next(snapshots))
                                    for _ in rs]
    cache = GenerationCache()
    reqs = [Request(np.full(160, i, np.float32), f"prompt {i}", f"item{i}") for i in range(3)]
    cached_generate(model, reqs[:2], Decoding(), cache)
    assert cache.served == {("scripted", "snap-1"): 2}
    cached_generate(model, reqs, Decoding(), cache)  # two read, one computed
    assert cache.served == {("scripted", "snap-1"): 4, ("scripted", "snap-2"): 1}


def test_clips_not_read_yet_are_read_once_each_and_an_unreadable_one_costs_its_own_item(
        tmp_path, monkeypatch):
    import soundfile as sf

    from harness.cache import cached_label_logprobs
    from harness.data import audio
    from harness.models.api import NOT_LOADED

    clip = tmp_path / "a.wav"
    sf.write(clip, np.zeros(1600, np.float32), 16000)
    reads = []
    real = audio.read_audio
    monkeypatch.setattr(audio, "read_audio", lambda path, *a, **k: reads.append(path) or real(
        path, *a, **k))
    loaded = Request(np.ones(8, np.float32), "p", "loaded")
    lazy = [Request(NOT_LOADED, f"p{n}", "a", "hash-a", clip) for n in range(2)]
    gone = Request(NOT_LOADED, "p", "gone", "hash-gone", tmp_path / "gone.wav")
    seen = []
    model = ScriptedModel(lambda r, d: seen.append(r) or [("x", 0.0)],
                          label_scores=lambda r: seen.append(r) or [0.0, 0.0])
    got = cached_generate(model, [lazy[0], gone, loaded, lazy[1]], Decoding(), None)
    assert [g.error is None for g in got] == [True, False, True, True]
    assert got[1].error.startswith("audio error: ") and "gone.wav" in got[1].error
    assert reads == [clip, gone.source] and seen[1] is loaded and seen[0].audio is seen[2].audio
    assert seen[0].audio.shape == (1600,)
    scored = cached_label_logprobs(model, [gone, loaded], ["a", "b"], None)
    assert scored[0].error.startswith("audio error: ") and np.isnan(scored[0].logprobs).all()
    assert scored[1].error is None and seen[-1] is loaded


@pytest.mark.parametrize("kind", ["generations", "label scores"])
def test_a_model_that_stops_midway_has_its_answers_stored_before_the_stop_is_raised(kind):
    from harness.cache import cached_label_logprobs
    from harness.models import SpendingCapReached

    class StopsMidway(ScriptedModel):
        stopped = None

        def generate(self, requests, decoding):
            self.stopped = SpendingCapReached("scripted: its cap was reached")
            return super().generate(requests, decoding)

        def label_logprobs(self, requests, labels):
            self.stopped = SpendingCapReached("scripted: its cap was reached")
            return super().label_logprobs(requests, labels)

    model = StopsMidway(answer, label_scores=_label_rows)
    reqs = [Request(np.full(4, i, np.float32), "plain") for i in range(3)]
    cache = GenerationCache()
    call = ((lambda c: cached_generate(model, reqs, Decoding(), c)) if kind == "generations"
            else (lambda c: cached_label_logprobs(model, reqs, ["a", "b"], c)))
    with pytest.raises(SpendingCapReached, match="^scripted: its cap was reached$"):
        call(cache)
    assert len(cache) == 3 and model.requests == 3
    with pytest.raises(SpendingCapReached):
        call(None)  # no cache: the stop still ends the call
    model.stopped = None
    call(cache)
    assert model.requests == 6 and cache.hits == 3  # no cache: asked again; then all stored
