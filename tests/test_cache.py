import multiprocessing
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
    model = ScriptedModel(answer)
    base = Request(np.zeros(10, np.float32), "p")
    keys = {generation_key(model.info, base, Decoding()),
            generation_key(model.info, Request(np.ones(10, np.float32), "p"), Decoding()),
            generation_key(model.info, Request(np.zeros(10, np.float32), "q"), Decoding()),
            generation_key(model.info, base, Decoding(max_new_tokens=5)),
            generation_key(ScriptedModel(answer, name="other").info, base, Decoding())}
    assert len(keys) == 5


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


def _writer(path, worker, rows):
    cache = GenerationCache(path)
    for start in range(0, rows, 50):
        cache.put_many("generation", f"w{worker}",
                       [(f"{worker}-{i}", {"worker": worker, "i": i}) for i in range(start, start + 50)])


def test_four_processes_writing_at_once_lose_nothing(tmp_path, record_property):
    path = tmp_path / "shared.sqlite"  # created by the four of them at once
    rows = 2500
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, rows)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = GenerationCache(path)
    assert len(cache) == 4 * rows
    keys = [f"{w}-{i}" for w in range(4) for i in range(rows)]
    found = cache.get_many(keys)
    assert all(found[f"{w}-{i}"] == {"worker": w, "i": i} for w in range(4) for i in range(rows))
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    record_property("reliability", f"concurrency: 4 processes created and wrote the cache at once, "
                                   f"{4 * rows} rows, {len(found)} read back intact, integrity ok")
