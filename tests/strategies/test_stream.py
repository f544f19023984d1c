"""Items in chunks: results do not depend on the chunk size, clips are read only where a model
needs them, a cached rerun reads and hashes no clip, and preparing runs one chunk ahead only."""

import numpy as np
import pytest

import harness.strategies._stream as stream
from harness.cache import GenerationCache
from harness.data import load_dataset
from harness.data.clips import MEMO, identity
from harness.models.api import Capabilities
from harness.strategies import StrategyConfig, run_strategy, strategy_names
from tests.fakes import ScriptedModel
from tests.helpers import corpus_copy, watch_clip_reads


def answers(request, decoding):
    n = sum(map(ord, request.item_id + request.prompt[-30:])) % 7
    text = f'{{"Anger": {n + 1}, "Neutral": {7 - n}}}'
    if decoding.max_new_tokens == 8:
        return [(f"{n / 10:.1f}", -1.0)]
    return [(text, -1.0 - k - n / 10) for k in range(decoding.num_candidates)]


def model():
    return ScriptedModel(answers, label_scores=lambda r: np.arange(6.0) - len(r.item_id) % 3)


def summary(results):
    return [(r.item_id, None if r.probs is None else r.probs.tolist(), r.rule, r.reason, r.error,
             r.notes, [c.get("verifier_score") for c in r.candidates]) for r in results]


@pytest.mark.parametrize("setting", [("HARNESS_CHUNK", "3"), ("HARNESS_CHUNK_MIB", "1"),
                                     ("HARNESS_READERS", "3")])  # clips read on 3 threads
@pytest.mark.parametrize("strategy", strategy_names())
def test_results_do_not_depend_on_the_chunk_size(strategy, setting, monkeypatch):
    dataset = load_dataset("crema_d")
    whole = run_strategy(strategy, model(), dataset, verifier=model())
    monkeypatch.setenv(*setting)
    seen = []
    chunked = run_strategy(strategy, model(), dataset, verifier=model(), progress=seen.append)
    assert summary(chunked) == summary(whole)
    assert seen == sorted(seen) and seen[-1] == len(dataset)


def test_a_run_lets_go_of_the_clip_memory_it_no_longer_needs():
    """The process keeps at most KEEP_BLOCKS free blocks of clip memory between runs (besides
    the blocks whose clips an earlier test in this worker still holds: no run may free those)."""
    import gc

    from harness.data.arena import ARENA, KEEP_BLOCKS

    gc.collect()  # clips left in an earlier test's reference cycles let go of
    elsewhere = sum(ARENA._blocks[i] is not ARENA._current and not ARENA._is_free(i)
                    for i in range(ARENA.blocks))  # the block being carved is counted below
    held = [ARENA.take(ARENA.block) for _ in range(KEEP_BLOCKS + 3)]  # a block each
    assert ARENA.blocks >= KEEP_BLOCKS + 3
    del held
    run_strategy("base", model(), load_dataset("crema_d")[:2])
    assert ARENA.blocks <= KEEP_BLOCKS + 1 + elsewhere  # and the block being carved


def test_a_cache_is_asked_once_which_clips_rows_it_holds(tmp_path):
    """Clips looked up in a cache and stored there are known to be in it: the next cell's
    chunks do not ask again."""
    MEMO.clear()  # a new process: the first run looks every clip up
    cache = GenerationCache(tmp_path / "cache.sqlite")
    dataset = load_dataset("crema_d")
    run_strategy("base", model(), dataset, cache=cache)
    asked: list[str] = []
    missing = cache.missing
    cache.missing = lambda keys: asked.extend(keys) or missing(keys)  # type: ignore[method-assign]
    run_strategy("cot", model(), dataset, cache=cache)
    clip_rows = {stream._clip_key(identity(item.audio_path)) for item in dataset}
    assert clip_rows.isdisjoint(asked) and asked  # its generations' rows it is asked about


def test_a_cached_rerun_in_a_new_process_reads_and_hashes_no_clip(tmp_path, monkeypatch):
    root = corpus_copy("crema_d", tmp_path)
    dataset = load_dataset("crema_d", root)
    cache = GenerationCache(tmp_path / "cache.sqlite")
    MEMO.clear()
    reads = watch_clip_reads(monkeypatch)
    first = run_strategy("w-bon", model(), dataset, cache=cache)
    assert reads.counts() == {"decoded": len(dataset), "hashed": len(dataset)}
    MEMO.clear()  # a new process: the hashes come back from the cache's clip rows
    cache.close()
    cache = GenerationCache(tmp_path / "cache.sqlite")
    again = model()
    rerun = run_strategy("w-bon", again, dataset, cache=cache)
    assert again.requests == 0 and summary(rerun) == summary(first)
    assert (cache.hits, cache.misses) == (len(dataset), 0)  # generations: clip rows not counted
    assert reads.counts() == {"decoded": len(dataset), "hashed": len(dataset)}  # none more
    assert dataset.manifest_hash() == load_dataset("crema_d", root).manifest_hash()
    assert len(reads.hashed) == len(dataset)  # the manifest took the remembered hashes


def test_a_strategy_sharing_the_cache_reads_only_the_clips_it_needs(tmp_path, monkeypatch):
    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    run_strategy("bon", model(), dataset[:10], cache=cache)
    reads = watch_clip_reads(monkeypatch)
    run_strategy("w-bon", model(), dataset, cache=cache)  # bon's beams: 10 items cached
    assert len(reads.decoded) == len(dataset) - 10


@pytest.mark.parametrize("strategy", strategy_names())
def test_every_strategy_reruns_from_its_cache_without_reading_a_clip(strategy, tmp_path,
                                                                     monkeypatch):
    """A strategy's first cache keys are those its results are stored under (readout's: the
    labels' scores, not a generation), so a rerun skips every clip."""
    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    first = run_strategy(strategy, model(), dataset, cache=cache, verifier=model())
    reads = watch_clip_reads(monkeypatch)
    again, judge = model(), model()
    rerun = run_strategy(strategy, again, dataset, cache=cache, verifier=judge)
    assert (again.requests, judge.requests) == (0, 0) and summary(rerun) == summary(first)
    assert reads.decoded == []


def test_a_rewritten_clip_is_hashed_again_and_a_vanished_one_costs_its_item(tmp_path, monkeypatch):
    root = corpus_copy("crema_d", tmp_path)
    dataset = load_dataset("crema_d", root)
    cache = GenerationCache(tmp_path / "cache.sqlite")
    run_strategy("base", model(), dataset, cache=cache)
    changed, gone = dataset[0].audio_path, dataset[1].audio_path
    changed.write_bytes(changed.read_bytes()[:-2])  # a new size: a new identity
    gone.unlink()
    reads = watch_clip_reads(monkeypatch)
    fresh = model()
    results = run_strategy("sample-n", fresh, dataset, cache=cache)
    assert len(reads.hashed) == 1
    assert results[1].reason == "audio error" and "audio file not found" in results[1].error
    assert all(r.valid for i, r in enumerate(results) if i != 1)


def test_a_clip_gone_between_its_hash_and_its_generation_is_an_item_error(tmp_path, monkeypatch):
    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    run_strategy("alm-v", model(), dataset, cache=cache, verifier=model())  # beams cached
    monkeypatch.setattr(stream, "read_audio", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("w-alm-v's beams are cached: no clip is read ahead")))
    gone, real_prepare = dataset[2].audio_path, stream.prepare

    def prepare_then_lose_a_clip(*args, **kwargs):
        chunk = real_prepare(*args, **kwargs)
        gone.unlink(missing_ok=True)  # after its hash was taken, before the verifier reads it
        return chunk

    monkeypatch.setattr(stream, "prepare", prepare_then_lose_a_clip)
    results = run_strategy("w-alm-v", model(), dataset, cache=cache,
                           verifier=ScriptedModel(answers, name="other-verifier"))
    assert results[2].valid  # the unscored candidates keep the item (unscored="keep")
    assert "audio error" in results[2].candidates[0]["verifier_reply"]
    assert all(r.valid for r in results)


def test_long_clips_make_shorter_chunks_and_a_clip_over_the_budget_one_of_its_own(tmp_path):
    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    sizes = [item.audio_path.stat().st_size for item in dataset]
    dataset[4].audio_path.unlink()  # a missing clip takes no room (its item fails later)
    sizes[4] = 0

    def ends(budget):
        out, start = [], 0
        while start < len(dataset):
            _, start = stream.cut(dataset, start, 10, budget)
            out.append(start)
        return out

    assert ends(sum(sizes)) == [10, 20, len(dataset)]  # the item count still caps a chunk
    chunked = ends(sum(sizes[:3]))
    assert chunked[0] == 3 and chunked[-1] == len(dataset)
    for first, end in zip([0, *chunked], chunked):
        held = sum(sizes[first:end])
        assert held <= sum(sizes[:3]) or end - first == 1
        assert end == len(dataset) or end - first == 10 or held + sizes[end] > sum(sizes[:3])
    assert ends(1) == list(range(1, len(dataset) + 1))  # each clip over the budget: one a chunk
    idents, _ = stream.cut(dataset, 0, 5, 10**9)
    assert idents == [identity(item.audio_path) for item in list(dataset)[:5]]
    assert idents[4] is None


def test_preparing_runs_one_chunk_ahead_of_the_model(monkeypatch):
    dataset = load_dataset("crema_d")
    events = []
    real_prepare = stream.prepare

    def prepare(items, *args, **kwargs):
        events.append(("prepare", items[0].id))
        return real_prepare(items, *args, **kwargs)

    def script(request, decoding):
        if not events or events[-1] != ("model", request.item_id):
            events.append(("model", request.item_id))
        return answers(request, decoding)

    monkeypatch.setattr(stream, "prepare", prepare)
    monkeypatch.setenv("HARNESS_CHUNK", "4")
    run_strategy("base", ScriptedModel(script), dataset[:16])
    firsts = [dataset[i].id for i in range(0, 16, 4)]
    for n, first in enumerate(firsts):
        called = events.index(("model", first))
        prepared = [e for e in events[:called] if e[0] == "prepare"]
        assert len(prepared) <= n + 2, events  # this chunk and the next, no further


def test_no_cache_reads_every_clip_and_stores_nothing(monkeypatch):
    dataset = load_dataset("crema_d")[:5]
    reads = watch_clip_reads(monkeypatch)
    results = run_strategy("readout", model(), dataset, config=StrategyConfig())
    assert len(reads.decoded) == 5 and all(r.valid for r in results)


def test_a_model_never_sees_a_request_whose_audio_is_not_read():
    def script(request, decoding):
        assert request.loaded and request.audio.size > 0
        return answers(request, decoding)

    caps = Capabilities()
    run_strategy("alm-v", ScriptedModel(script, capabilities=caps), load_dataset("crema_d")[:6],
                 verifier=ScriptedModel(script, name="v"))


def test_a_new_clip_whose_generation_is_cached_is_read_once_and_its_samples_dropped(
        tmp_path, monkeypatch):
    import shutil

    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    first = run_strategy("bon", model(), dataset, cache=cache)
    moved = load_dataset("crema_d", shutil.copytree(tmp_path / "crema_d", tmp_path / "moved"))
    reads = watch_clip_reads(monkeypatch)  # the same content at new paths: new identities
    real_prepare, prepared = stream.prepare, []
    monkeypatch.setattr(stream, "prepare", lambda *a, **k: prepared.append(real_prepare(*a, **k))
                        or prepared[-1])
    again = model()
    rerun = run_strategy("w-bon", again, moved, cache=cache)  # bon's beams: all cached
    assert again.requests == 0 and [r.item_id for r in rerun] == [r.item_id for r in first]
    assert reads.counts() == {"decoded": len(moved), "hashed": len(moved)}  # one read of each
    assert not any(r.loaded for chunk in prepared for r in chunk.requests)  # samples dropped


def test_a_cache_opened_where_the_clips_are_known_gets_their_rows_for_the_next_process(
        tmp_path, monkeypatch):
    """Clips hashed for one cache, then a cell on a second cache in the same process (their
    facts remembered): the second cache gets their rows too, so a new process on it hashes none."""
    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    MEMO.clear()
    run_strategy("base", model(), dataset, cache=GenerationCache(tmp_path / "first.sqlite"))
    second = GenerationCache(tmp_path / "second.sqlite")
    reads = watch_clip_reads(monkeypatch)
    run_strategy("base", model(), dataset, cache=second)
    assert reads.hashed == []  # remembered in this process
    asked = watch_lookups(monkeypatch, second)
    run_strategy("bon", model(), dataset, cache=second)
    clip_keys = {stream._clip_key(identity(item.audio_path)) for item in dataset}
    assert asked and not asked & clip_keys  # the rows are known to be there: not asked again
    second.close()
    MEMO.clear()  # a new process
    again, decoded = model(), len(reads.decoded)
    run_strategy("base", again, dataset, cache=GenerationCache(tmp_path / "second.sqlite"))
    assert again.requests == 0 and reads.hashed == [] and len(reads.decoded) == decoded


def watch_lookups(monkeypatch, cache):
    asked = set()
    real = cache.missing

    def missing(keys):
        asked.update(keys)
        return real(keys)

    monkeypatch.setattr(cache, "missing", missing)
    return asked


def test_an_item_without_a_transcript_is_noted_as_such():
    import dataclasses

    items = [dataclasses.replace(item, transcript=text) for item, text in zip(
        load_dataset("crema_d")[:2], ["", "It's eleven o'clock"])]
    chunk = stream.prepare(items, lambda item: "p", lambda requests: [False] * len(requests), None)
    assert chunk.notes[items[0].id] == [f"{items[0].id}: no transcript; the prompt's target "
                                        "utterance is empty"]
    assert chunk.notes[items[1].id] == [] and len(chunk.requests) == 2


def test_a_clip_damaged_in_place_after_its_hash_is_its_items_audio_error(tmp_path):
    """Its remembered hash stands (as for a clip rewritten within the clock tick of its hash,
    which keeps its identity: stood in for here by remembering the old facts against the new
    identity); the decoding then fails, and the item says so without reaching the model."""
    from harness.data.clips import MEMO, identity

    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    run_strategy("base", model(), dataset)  # every clip's facts remembered
    clip = dataset[3].audio_path
    remembered = MEMO.get(identity(clip))
    assert remembered is not None
    clip.write_bytes(b"\0" * clip.stat().st_size)
    MEMO.put(identity(clip), remembered)
    seen = []
    results = run_strategy("base", ScriptedModel(lambda r, d: seen.append(r.item_id) or answers(
        r, d)), dataset)
    assert results[3].reason == "audio error" and dataset[3].id in results[3].error
    assert dataset[3].id not in seen and len(seen) == len(dataset) - 1
    assert all(r.valid for i, r in enumerate(results) if i != 3)


@pytest.mark.parametrize("strategy", strategy_names())
def test_each_request_carries_its_own_clips_samples_when_only_some_are_read(strategy, tmp_path):
    """Half the items' answers cached, every clip's hash known: the other half's clips are read,
    and each request gets its own (not the next read's), the verifier's requests too."""
    from tests.fakes import OwnClipModel

    dataset = load_dataset("crema_d", corpus_copy("crema_d", tmp_path))
    cache = GenerationCache(tmp_path / "cache.sqlite")
    run_strategy("base", model(), dataset)  # every clip's facts known, nothing cached
    run_strategy(strategy, model(), dataset[:13], cache=cache, verifier=model())
    checked = OwnClipModel(answers, label_scores=model().label_scores)
    results = run_strategy(strategy, checked, dataset, cache=cache,
                           verifier=OwnClipModel(answers, name="own-clip-verifier"))
    assert checked.requests >= len(dataset) - 13 and all(r.valid for r in results)


def test_harness_chunk_mib_bounds_a_chunks_clips_in_mebibytes(monkeypatch):
    dataset = load_dataset("crema_d")
    sizes = [item.audio_path.stat().st_size for item in dataset]
    monkeypatch.setenv("HARNESS_CHUNK_MIB", "1")
    lengths = [len(chunk.ids) for chunk in stream.chunks(
        dataset, lambda item: "p", lambda requests: [False] * len(requests), None)]
    fits = max(n for n in range(1, len(sizes) + 1) if sum(sizes[:n]) <= 2**20)
    assert sum(sizes) > 2**20 and lengths[0] == fits and sum(lengths) == len(dataset)
