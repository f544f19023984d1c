"""Memory a run's decoded clips are written into, reused from chunk to chunk.

On this project's 2-core machine a 6-second clip decoded into fresh memory cost three times what
it cost in memory used before (the kernel faults in and zeroes every new page: 4,300 against
12,800 clips/s). The runner holds two chunks' clips at a time, so it takes their buffers from an
:class:`Arena` of 4 MiB blocks, and a block is used again only once nothing refers to any clip in
it (blocks of 16 MiB held more: a block stays whole while one clip in it lives; a cold 20,000-item
cell peaked at 310-355 MiB over three runs with them, 307-311 MiB with 4 MiB blocks): every buffer
handed out is a view of its block, and a view (or a view of it, or a tensor made from it) keeps a
reference to the block, so a block some code still holds a clip of is never overwritten; a new
block is made instead. The process keeps one arena (:data:`ARENA`), so consecutive runs (a grid's
cells) reuse it too; after a run it keeps at most :data:`KEEP_BLOCKS` free blocks.

Where the system has ``memfd_create`` (Linux), a block is shared memory: a file descriptor of it
can be handed to another process (:mod:`harness.data.reader_process`), which then writes clips
into blocks this process has :meth:`~Arena.reserve`-d for it.
"""

from __future__ import annotations

import collections
import mmap
import os
import sys
import threading

import numpy as np

BLOCK = 1 << 20  # float32 samples per block (4 MiB, 65 s at 16 kHz)
SHAREABLE = hasattr(os, "memfd_create")


class Arena:
    """Float32 buffers carved from reusable blocks; safe to take from several threads.
    ``shared``: blocks are shared memory another process can map (:meth:`handle`)."""

    def __init__(self, block: int = BLOCK, shared: bool = False) -> None:
        self.block = block
        self.shared = shared and SHAREABLE
        self._blocks: list[np.ndarray] = []
        self._handles: dict[int, tuple[int, int]] = {}  # id(block) -> (serial, descriptor)
        self._serials = 0
        # serials of shared blocks let go, for the process that mapped them (bounded: a run
        # without a reader process lets blocks go too)
        self._dropped: collections.deque[int] = collections.deque(maxlen=1 << 16)
        self._current: np.ndarray | None = None
        self._used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> np.ndarray:
        """A float32 buffer of ``n`` samples (its contents undefined)."""
        if n > self.block:
            return np.empty(n, dtype=np.float32)
        with self._lock:
            if self._current is None or self._used + n > self.block:
                self._current, self._used = self._free_block(), 0
            start, self._used = self._used, self._used + n
            return self._current[start:self._used]

    def reserve(self, count: int) -> list[np.ndarray]:
        """``count`` whole blocks no one else is handed while the caller holds them (free ones
        first, new ones after); :meth:`take` never carves from them."""
        with self._lock:
            out: list[np.ndarray] = []
            for _ in range(count):  # a block in ``out`` is referenced: no longer free
                out.append(self._free_block())
            return out

    def handle(self, block: np.ndarray) -> tuple[int, int] | None:
        """A shared block's serial number and file descriptor (the arena's: do not close it),
        None for memory of this process alone."""
        return self._handles.get(id(block))

    def trim(self, keep: int) -> None:
        """Let go of free blocks beyond ``keep`` (a run's end: the memory goes back)."""
        with self._lock:
            free = [i for i in range(len(self._blocks)) if self._is_free(i)]
            for i in reversed(free[keep:]):
                handle = self._handles.pop(id(self._blocks[i]), None)
                if handle is not None:
                    os.close(handle[1])
                    self._dropped.append(handle[0])
                del self._blocks[i]

    def take_dropped(self) -> list[int]:
        """The serials of the shared blocks let go since the last call."""
        with self._lock:
            dropped = list(self._dropped)
            self._dropped.clear()
            return dropped

    @property
    def blocks(self) -> int:
        return len(self._blocks)

    def _free_block(self) -> np.ndarray:
        for i in range(len(self._blocks)):
            if self._is_free(i):
                return self._blocks[i]
        fresh = self._new_block()
        self._blocks.append(fresh)
        return fresh

    def _new_block(self) -> np.ndarray:
        if not self.shared:
            return np.empty(self.block, dtype=np.float32)
        size = self.block * 4
        fd = os.memfd_create("harness-arena", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            block = np.frombuffer(mmap.mmap(fd, size), dtype=np.float32)
        except BaseException:
            os.close(fd)
            raise
        self._serials += 1
        self._handles[id(block)] = (self._serials, fd)
        return block

    def _is_free(self, i: int) -> bool:
        # referenced by the list and getrefcount's argument alone: no clip of it lives
        return self._blocks[i] is not self._current and sys.getrefcount(self._blocks[i]) <= 2


ARENA = Arena(shared=True)  # the process's: a run's clips reuse the memory the previous run's held
KEEP_BLOCKS = 32  # free blocks kept between runs (128 MiB)
