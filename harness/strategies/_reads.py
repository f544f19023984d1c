"""Where a chunk's clips are read: in this process (by the thread preparing the chunk, or by a
pool of reader threads), or by a reader process (:mod:`harness.data.reader_process`) writing
into this process's arena. Each way gives the same results in the same order: a clip's facts and
samples, or the :class:`~harness.data.problems.DataError` reading it gave."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from typing import TypeVar

import numpy as np

from harness.data.arena import ARENA
from harness.data.audio import read_audio
from harness.data.clips import MEMO, ClipFacts, first_sight, identity
from harness.data.problems import AudioError, DataError
from harness.data.reader_process import ReaderProcess
from harness.models.api import Request

FirstSight = tuple[ClipFacts, "np.ndarray | None"]
PathAndIdentity = tuple["str | os.PathLike[str]", "str | None"]


class ThreadReads:
    """Clips read in this process: by ``pool``'s threads, or by the calling thread."""

    def __init__(self, pool: Executor | None = None) -> None:
        self.pool = pool

    def identities(self, paths: Sequence[str | os.PathLike[str]]) -> list[str | None]:
        """Each clip's :func:`~harness.data.clips.identity`."""
        return [identity(path) for path in paths]

    def first_sights(self, pairs: Sequence[PathAndIdentity], sizes: Sequence[int]
                     ) -> Iterable[FirstSight | DataError]:
        """Each clip's :func:`~harness.data.clips.first_sight` (into the arena)."""
        return _each(self.pool, _first_sight, pairs)

    def samples(self, requests: Sequence[Request], sizes: Sequence[int]
                ) -> Iterable[np.ndarray | DataError]:
        """Each request's clip's samples (into the arena)."""
        return _each(self.pool, _samples, requests)


class ProcessReads:
    """Clips read by ``process``; what it does not do, ``here`` does (see
    :mod:`harness.data.reader_process`). ``sizes``: each clip file's size in bytes, for the
    blocks reserved for its samples."""

    def __init__(self, process: ReaderProcess, here: ThreadReads | None = None) -> None:
        self.process, self.here = process, here or ThreadReads()

    def identities(self, paths: Sequence[str | os.PathLike[str]]) -> list[str | None]:
        replies = self.process.run([("identity", os.fspath(p)) for p in paths], None)
        if replies is None:
            return self.here.identities(paths)
        return [reply[1] if reply[0] == "identity" else identity(path)
                for path, reply in zip(paths, replies)]

    def first_sights(self, pairs: Sequence[PathAndIdentity], sizes: Sequence[int]
                     ) -> Iterable[FirstSight | DataError]:
        replies = self.process.run([("first", os.fspath(p), i) for p, i in pairs], sizes)
        if replies is None:
            return self.here.first_sights(pairs, sizes)
        return [self._first_sight(pair, reply) for pair, reply in zip(pairs, replies)]

    def _first_sight(self, pair: PathAndIdentity, reply: tuple) -> FirstSight | DataError:
        if reply[0] == "facts":
            facts = ClipFacts(reply[1], tuple(reply[2]))
            MEMO.put(pair[1], facts)
            return facts, reply[3]
        if reply[0] == "error":
            return AudioError(reply[1], reply[2])
        return next(iter(self.here.first_sights([pair], [0])))

    def samples(self, requests: Sequence[Request], sizes: Sequence[int]
                ) -> Iterable[np.ndarray | DataError]:
        replies = self.process.run([("samples", r.source or "") for r in requests], sizes)
        if replies is None:
            return self.here.samples(requests, sizes)
        return [self._samples(request, reply) for request, reply in zip(requests, replies)]

    def _samples(self, request: Request, reply: tuple) -> np.ndarray | DataError:
        if reply[0] == "samples" and reply[1] is not None:
            return reply[1]
        if reply[0] == "error":
            return AudioError(reply[1], reply[2])
        return next(iter(self.here.samples([request], [0])))


Reads = ThreadReads | ProcessReads


def _samples(request: Request) -> np.ndarray:
    return read_audio(request.source or "", out=ARENA.take)[0]


def _first_sight(path_and_identity: PathAndIdentity) -> FirstSight:
    path, ident = path_and_identity
    return first_sight(path, key=ident, out=ARENA.take)


T = TypeVar("T")
R = TypeVar("R")


def _each(pool: Executor | None, read: Callable[[T], R], things: Sequence[T]
          ) -> Iterator[R | DataError]:
    """``read`` of each thing, in order, on the pool's threads; a DataError is its value."""
    def guarded(thing: T) -> R | DataError:
        try:
            return read(thing)
        except DataError as exc:
            return exc

    return pool.map(guarded, things) if pool is not None else map(guarded, things)
