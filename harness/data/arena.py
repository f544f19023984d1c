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
"""

from __future__ import annotations

import sys
import threading

import numpy as np

BLOCK = 1 << 20  # float32 samples per block (4 MiB, 65 s at 16 kHz)


class Arena:
    """Float32 buffers carved from reusable blocks; safe to take from several threads."""

    def __init__(self, block: int = BLOCK) -> None:
        self.block = block
        self._blocks: list[np.ndarray] = []
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

    def trim(self, keep: int) -> None:
        """Let go of free blocks beyond ``keep`` (a run's end: the memory goes back)."""
        with self._lock:
            free = [i for i in range(len(self._blocks)) if self._is_free(i)]
            for i in reversed(free[keep:]):
                del self._blocks[i]

    @property
    def blocks(self) -> int:
        return len(self._blocks)

    def _free_block(self) -> np.ndarray:
        for i in range(len(self._blocks)):
            if self._is_free(i):
                return self._blocks[i]
        fresh = np.empty(self.block, dtype=np.float32)
        self._blocks.append(fresh)
        return fresh

    def _is_free(self, i: int) -> bool:
        # referenced by the list and getrefcount's argument alone: no clip of it lives
        return self._blocks[i] is not self._current and sys.getrefcount(self._blocks[i]) <= 2


ARENA = Arena()  # the process's: a run's clips reuse the memory the previous run's held
KEEP_BLOCKS = 32  # free blocks kept between runs (128 MiB)
