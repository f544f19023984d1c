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
