import json
import multiprocessing
import sqlite3

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.cache import CacheError, GenerationCache, cached_generate, generation_key
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


def test_a_cache_on_a_network_file_system_is_refused(tmp_path, monkeypatch):
    import harness.cache.filesystems as filesystems

    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {tmp_path}/shared nfs4 rw 0 0\n")
    monkeypatch.setattr(filesystems, "MOUNTS", str(mounts))
    GenerationCache(tmp_path / "local" / "generations.sqlite").close()
    with pytest.raises(CacheError, match="on a nfs4 file system.*local disk.*harness.cache merge"):
        GenerationCache(tmp_path / "shared" / "cache" / "generations.sqlite")


def test_caches_of_several_machines_merge_into_one(tmp_path, capsys):
    from harness.cache.__main__ import main

    rows = {f"k{i}": {"v": i} for i in range(6)}
    for name, keys in (("a", ["k0", "k1", "k2"]), ("b", ["k2", "k3", "k4", "k5"])):
        cache = GenerationCache(tmp_path / name / "generations.sqlite")
        cache.put_many("generation", "m", [(k, rows[k]) for k in keys])
        cache.close()
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "a" / "generations.sqlite"),
                 str(tmp_path / "b" / "generations.sqlite")]) == 0
    merged = GenerationCache(tmp_path / "all.sqlite")
    assert merged.get_many(list(rows)) == rows
    merged.close()
    (tmp_path / "junk.sqlite").write_text("not a database")
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "junk.sqlite")]) == 1
    # a mistyped source is refused, not opened (which made an empty cache there: "0 entries")
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "typo.sqlite")]) == 1
    assert not (tmp_path / "typo.sqlite").exists()
    assert "no such cache file" in capsys.readouterr().err


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


def test_rows_beyond_strict_json_read_back_as_they_were_written(tmp_path):
    """A beam without a log-likelihood (-inf, NaN) and a lone surrogate in a text (what a
    server's "\\ud800" decodes to) are stored as the standard library writes them; orjson, which
    reads the other rows, refuses these, and they are read back unchanged all the same."""
    import math

    def odd(request, decoding):
        return [("\ud800 {\"Anger\": 1} Ä", -math.inf), ("plain", math.nan), ("x", -1.5)]

    path = tmp_path / "cache.sqlite"
    model = ScriptedModel(odd)
    reqs = [Request(np.full(160, i, np.float32), f"prompt {i}", f"item{i}") for i in range(2)]
    first = cached_generate(model, reqs, Decoding(mode="beam", num_candidates=3),
                            GenerationCache(path))
    cache = GenerationCache(path)
    again = cached_generate(model, reqs, Decoding(mode="beam", num_candidates=3), cache)
    assert model.requests == 2 and cache.hits == 2 and cache.damaged == 0
    for before, after in zip(first, again):
        assert [c.text for c in after.candidates] == [c.text for c in before.candidates]
        [inf, nan, finite] = [c.logprob for c in after.candidates]
        assert inf == -math.inf and math.isnan(nan) and finite == -1.5


row_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats()  # NaN, ±inf, integers over 64 bits
    | st.text(alphabet=st.characters(exclude_categories=())),  # lone surrogates too
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text() | st.integers(), inner, max_size=4), max_leaves=20)


@given(row_values)
def test_a_row_reads_back_as_the_standard_library_wrote_it(value):
    """Rows are written by orjson where it writes what the standard library would (no null, so
    no non-finite number; nothing it refuses), else by the standard library: whichever wrote
    it, the row reads back as ``json`` wrote and read it."""
    from harness.cache.store import _row_text, _row_value

    as_json = json.dumps(value, allow_nan=True)
    assert json.dumps(_row_value(_row_text(value)), allow_nan=True) == as_json
