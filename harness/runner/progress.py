"""Progress of a long cell: items done, items per second, time left."""

from __future__ import annotations

import time
from collections.abc import Callable


class Progress:
    """``progress(done)`` writes ``<cell>: 300/1200 items, 8.1 items/s, ETA 1m51s`` to ``sink``."""

    def __init__(self, cell: str, total: int, sink: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cell, self.total, self.sink, self.clock = cell, total, sink, clock
        self.start = clock()

    def __call__(self, done: int) -> None:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        self.sink(f"{self.cell}: {done}/{self.total} items, {rate:.1f} items/s, ETA {_clock(left)}")


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
