"""Items in bounded chunks: each chunk's clips are hashed, and read where a model will need them,
in a background thread while the model works on the chunk before.

A chunk's requests carry the clip's content hash (:class:`~harness.data.clips.ClipFacts`) in
place of a hash of the samples; a clip whose identity (path, inode, size, modification time) the
harness has seen is not hashed again, in this process or, through the generation cache's
``clip`` rows, in the next one. Samples are read only for the requests whose first model call is
not cached already, and are dropped with their chunk: at most two chunks' audio is held.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from harness.cache import GenerationCache, sha256
from harness.data.audio import TARGET_SR, read_audio
from harness.data.clips import MEMO, ClipFacts, identity, read_facts
from harness.data.problems import DataError
from harness.models.api import NOT_LOADED, Request
from harness.strategies._results import ItemResult

if TYPE_CHECKING:
    from harness.data import Dataset, Item

CHUNK = 256  # items per chunk: what the model is given at once, and what a killed run can lose
CLIP_KIND = "clip"


@dataclass
class Chunk:
    """One chunk's item ids, its requests (item order), the items whose clip failed, and each
    item's notes."""

    ids: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    failed: dict[str, ItemResult] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)


Prompt = Callable[["Item"], str]
NeedsAudio = Callable[[Sequence[Request]], Sequence[bool]]


def chunks(dataset: Dataset, prompt_for: Prompt, needs_audio: NeedsAudio,
           cache: GenerationCache | None, size: int | None = None) -> Iterator[Chunk]:
    """The dataset's chunks in order, each prepared one ahead in a background thread;
    ``needs_audio(requests)`` says which requests a model will be asked about."""
    size = size or int(os.environ.get("HARNESS_CHUNK", CHUNK))
    starts = range(0, len(dataset), size)
    with ThreadPoolExecutor(1, thread_name_prefix="harness-clips") as pool:
        ahead: Future[Chunk] | None = None
        for start in starts:
            part = dataset[start:start + size]
            current, ahead = ahead, pool.submit(prepare, part, prompt_for, needs_audio, cache)
            if current is not None:
                yield current.result()
        if ahead is not None:
            yield ahead.result()


def prepare(items: Sequence[Item], prompt_for: Prompt, needs_audio: NeedsAudio,
            cache: GenerationCache | None) -> Chunk:
    """A chunk's requests with each clip's facts, audio read where ``needs_audio`` says."""
    chunk = Chunk([item.id for item in items])
    facts = known_facts(items, cache)
    for item in items:
        found = facts.get(item.id)
        if isinstance(found, DataError):
            chunk.failed[item.id] = ItemResult(item.id, error=str(found), reason="audio error")
            continue
        assert found is not None
        chunk.notes[item.id] = list(found.notes)
        if not item.transcript.strip():  # the prompt's target utterance is then empty
            chunk.notes[item.id].append(f"{item.id}: no transcript; the prompt's target "
                                        "utterance is empty")
        chunk.requests.append(Request(NOT_LOADED, prompt_for(item), item.id,
                                      found.audio_key(TARGET_SR), item.audio_path))
    wanted = needs_audio(chunk.requests) if chunk.requests else []
    ready = []
    for request, wanted_now in zip(chunk.requests, wanted):
        if wanted_now:
            try:
                request = replace(request, audio=read_audio(request.source or "")[0])
            except DataError as exc:
                chunk.failed[request.item_id] = ItemResult(request.item_id, error=str(exc),
                                                           reason="audio error")
                continue
        ready.append(request)
    chunk.requests = ready
    return chunk


def known_facts(items: Sequence[Item], cache: GenerationCache | None
                ) -> dict[str, ClipFacts | DataError]:
    """Each item's clip facts (remembered in this process, stored in the cache, or read now and
    stored), or the error reading it gave."""
    out: dict[str, ClipFacts | DataError] = {}
    idents = {item.id: identity(item.audio_path) for item in items}
    unknown = []
    for item in items:
        known = MEMO.get(idents[item.id])
        if known is None:
            unknown.append(item)
        else:
            out[item.id] = known
    stored = _stored(cache, [idents[item.id] for item in unknown])
    fresh = []
    for item in unknown:
        ident = idents[item.id]
        facts = stored.get(ident) if ident is not None else None
        if facts is None:
            try:
                facts = read_facts(item.audio_path)
            except DataError as exc:
                out[item.id] = exc
                continue
            if ident is not None:
                fresh.append((_clip_key(ident), facts.to_json()))
        out[item.id] = facts
        MEMO.put(ident, facts)
    if cache is not None and fresh:
        cache.put_many(CLIP_KIND, "-", fresh)
    return out


def _stored(cache: GenerationCache | None, idents: list[str | None]) -> dict[str, ClipFacts]:
    wanted = [i for i in idents if i is not None]
    if cache is None or not wanted:
        return {}
    rows = cache.get_many([_clip_key(i) for i in wanted], ClipFacts.from_json, count=False)
    return {i: rows[_clip_key(i)] for i in wanted if _clip_key(i) in rows}


def _clip_key(ident: str) -> str:
    return sha256(f"{CLIP_KIND}\n{ident}")
