"""Items in bounded chunks: each chunk's clips are hashed, and read where a model will need them,
in a background thread while the model works on the chunk before.

A chunk's requests carry the clip's content hash (:class:`~harness.data.clips.ClipFacts`) in
place of a hash of the samples; a clip whose identity (path, inode, size, modification and
change times) the harness has seen is not hashed again, in this process or, through the
generation cache's ``clip`` rows, in the next one. Samples are read only for the requests whose
first model call is not cached already, and are dropped with their chunk: at most two chunks'
audio is held.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from harness._env import positive_int, usable_cores
from harness.cache import GenerationCache, sha256
from harness.data.arena import ARENA, KEEP_BLOCKS
from harness.data.audio import TARGET_SR, read_audio
from harness.data.clips import MEMO, ClipFacts, first_sight, identity, identity_and_size
from harness.data.problems import DataError
from harness.models.api import NOT_LOADED, Request
from harness.strategies._results import ItemResult

if TYPE_CHECKING:
    from harness.data import Dataset, Item

CHUNK = 256  # items per chunk: what the model is given at once, and what a killed run can lose
# clips' bytes on disk per chunk: 256 clips of 32 s in 16-bit 16 kHz WAV; the corpora's clips
# (under 12 s) never reach it, a corpus of long recordings gets shorter chunks
CHUNK_MIB = 256
# threads reading clips beside the one preparing chunks (hashing and decoding release the
# interpreter's lock): one per two cores, at most four; on 2 cores a second reader gained nothing
READERS = max(1, min(4, usable_cores() // 2))
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
    """The dataset's chunks in order, each prepared one ahead in a background thread (its clips
    read by :data:`READERS` threads); ``needs_audio(requests)`` says which requests a model
    will be asked about. A chunk holds at most ``size`` items (``HARNESS_CHUNK``) and, past its
    first, clips of at most ``HARNESS_CHUNK_MIB`` MiB on disk together."""
    size = size or positive_int("HARNESS_CHUNK", CHUNK)
    budget = positive_int("HARNESS_CHUNK_MIB", CHUNK_MIB) << 20
    readers = positive_int("HARNESS_READERS", READERS)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="harness-chunks") as ahead_pool, \
                _readers(readers) as reader:

            def prepare_from(start: int) -> tuple[Chunk, int]:
                idents, end = cut(dataset, start, size, budget)
                return prepare(dataset[start:end], prompt_for, needs_audio, cache, reader,
                               idents), end

            ahead = ahead_pool.submit(prepare_from, 0) if len(dataset) else None
            while ahead is not None:
                ready, end = ahead.result()
                # the chunk handed out last is dropped by now (here and, if the caller lets go
                # of it before asking for the next, there): two chunks' clips at most are held
                ahead = ahead_pool.submit(prepare_from, end) if end < len(dataset) else None
                yield ready
                del ready
    finally:
        ARENA.trim(KEEP_BLOCKS)


def cut(dataset: Dataset, start: int, size: int, budget: int) -> tuple[list[str | None], int]:
    """The identities of the clips of the chunk that starts at ``start``, and where it ends: at
    most ``size`` items, and no item past the first whose clip would take the chunk's files over
    ``budget`` bytes (so long clips make shorter chunks, and the audio held stays bounded)."""
    idents: list[str | None] = []
    total = 0
    for index in range(start, min(len(dataset), start + size)):
        ident, size_on_disk = identity_and_size(dataset[index].audio_path)
        if idents and total + size_on_disk > budget:
            break
        idents.append(ident)
        total += size_on_disk
    return idents, start + len(idents)


@contextlib.contextmanager
def _readers(count: int) -> Iterator[Executor | None]:
    """Threads to read clips on, or None: the preparing thread reads them itself (one reader
    in a pool of its own only adds a hand-over per clip)."""
    if count <= 1:
        yield None
        return
    with ThreadPoolExecutor(count, thread_name_prefix="harness-clips") as pool:
        yield pool


def prepare(items: Sequence[Item], prompt_for: Prompt, needs_audio: NeedsAudio,
            cache: GenerationCache | None, reader: Executor | None = None,
            idents: Sequence[str | None] | None = None) -> Chunk:
    """A chunk's requests with each clip's facts, audio read (into the process's arena) where
    ``needs_audio`` says; ``reader`` reads the clips (default: this thread); ``idents``: the
    clips' identities where they are known already."""
    chunk = Chunk([item.id for item in items])
    facts, first_read = known_facts(items, cache, reader, idents)
    early: list[np.ndarray | None] = []  # samples read with a new clip's facts, by request
    for item, found, read_with_facts in zip(items, facts, first_read):
        if isinstance(found, DataError):
            chunk.failed[item.id] = ItemResult(item.id, error=str(found), reason="audio error")
            continue
        chunk.notes[item.id] = list(found.notes)
        if not item.transcript.strip():  # the prompt's target utterance is then empty
            chunk.notes[item.id].append(f"{item.id}: no transcript; the prompt's target "
                                        "utterance is empty")
        chunk.requests.append(Request(NOT_LOADED, prompt_for(item), item.id,
                                      found.audio_key(TARGET_SR), item.audio_path))
        early.append(read_with_facts)
    wanted = needs_audio(chunk.requests) if chunk.requests else []
    read = _each(reader, _samples, [r for r, w, e in zip(chunk.requests, wanted, early)
                                    if w and e is None])
    ready = []
    for request, wanted_now, first in zip(chunk.requests, wanted, early):
        # a clip read with its facts but not needed is dropped here: its memory goes back
        samples = (first if first is not None else next(read)) if wanted_now else None
        if isinstance(samples, DataError):
            chunk.failed[request.item_id] = ItemResult(request.item_id, error=str(samples),
                                                       reason="audio error")
            continue
        ready.append(request if samples is None else request.with_samples(samples))
    chunk.requests = ready
    return chunk


def _samples(request: Request) -> np.ndarray:
    return read_audio(request.source or "", out=ARENA.take)[0]


T = TypeVar("T")
R = TypeVar("R")


def _each(reader: Executor | None, read: Callable[[T], R], things: Sequence[T]
          ) -> Iterator[R | DataError]:
    """``read`` of each thing, in order, on the reader threads; a DataError is its value."""
    def guarded(thing: T) -> R | DataError:
        try:
            return read(thing)
        except DataError as exc:
            return exc

    return reader.map(guarded, things) if reader is not None else map(guarded, things)


def known_facts(items: Sequence[Item], cache: GenerationCache | None,
                reader: Executor | None = None, idents: Sequence[str | None] | None = None
                ) -> tuple[list[ClipFacts | DataError], list[np.ndarray | None]]:
    """Each item's clip facts (remembered in this process, stored in the cache, or read now and
    stored), or the error reading it gave, in order; and the samples of each clip read now,
    where the same read gave them (None elsewhere). ``idents``: the clips' identities, where
    they are known already."""
    if idents is None:
        idents = [identity(item.audio_path) for item in items]
    out: list[ClipFacts | DataError | None] = [MEMO.get(ident) for ident in idents]
    unknown = [i for i, found in enumerate(out) if found is None]
    stored = _stored(cache, [idents[i] for i in unknown])
    for i in unknown:
        out[i] = stored.get(idents[i] or "")
    for i in unknown:
        if out[i] is not None:
            MEMO.put(idents[i], out[i])  # type: ignore[arg-type]
    fresh = [i for i in unknown if out[i] is None]  # read now, and remembered by first_sight
    samples: list[np.ndarray | None] = [None] * len(items)
    for i, found in zip(fresh, _each(reader, _first_sight, [(items[i].audio_path, idents[i])
                                                            for i in fresh])):
        out[i], samples[i] = found if isinstance(found, tuple) else (found, None)
    if cache is not None:
        asked = set(unknown)
        remembered = [i for i in range(len(items)) if i not in asked]
        _record_clips(cache, {idents[i]: out[i] for i in remembered},
                      {idents[i]: out[i] for i in fresh}, [idents[i] for i in unknown])
    return out, samples  # type: ignore[return-value]


# per cache: the clips whose rows it is known to hold, so that a cache opened in a process that
# already knows the clips (remembered from another cache) is given their rows, looked up once,
# and a new process on it hashes none of them again
_RECORDED: weakref.WeakKeyDictionary[GenerationCache, set[str]] = weakref.WeakKeyDictionary()


def _record_clips(cache: GenerationCache, remembered: dict, fresh: dict, looked_up: list) -> None:
    """Store the clip rows ``cache`` lacks: those of the clips read now (``fresh``: identity ->
    facts; the cache was just asked for them, ``looked_up``, and had none) and of the clips this
    process remembers (``remembered``) that the cache has not been asked about yet."""
    recorded = _RECORDED.setdefault(cache, set())
    unasked = {ident: found for ident, found in remembered.items()
               if ident is not None and ident not in recorded}
    lacking = cache.missing([_clip_key(ident) for ident in unasked]) if unasked else set()
    new = {**{ident: found for ident, found in unasked.items() if _clip_key(ident) in lacking},
           **{ident: found for ident, found in fresh.items() if ident is not None}}
    rows = [(_clip_key(ident), found.to_json()) for ident, found in new.items()
            if isinstance(found, ClipFacts)]
    if not rows or cache.put_many(CLIP_KIND, "-", rows):
        recorded.update(unasked)
        recorded.update(ident for ident in looked_up if ident is not None)


def _first_sight(path_and_identity: tuple) -> tuple[ClipFacts, np.ndarray | None]:
    path, ident = path_and_identity
    return first_sight(path, key=ident, out=ARENA.take)


def _stored(cache: GenerationCache | None, idents: list[str | None]) -> dict[str, ClipFacts]:
    wanted = [i for i in idents if i is not None]
    if cache is None or not wanted:
        return {}
    rows = cache.get_many([_clip_key(i) for i in wanted], ClipFacts.from_json, count=False)
    return {i: rows[_clip_key(i)] for i in wanted if _clip_key(i) in rows}


def _clip_key(ident: str) -> str:
    return sha256(f"{CLIP_KIND}\n{ident}")
