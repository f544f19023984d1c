"""Progress of a long cell: items done, items per second, time left."""

from __future__ import annotations

import time
from collections.abc import Callable

EVERY = 10.0  # seconds between a cell's progress lines: a cell done sooner writes none


class Progress:
    """``progress(done)`` writes ``<cell>: 300/1200 items, 8.1 items/s, ETA 1m51s`` to ``sink``
    once ``every`` seconds have passed since the cell started or since its last line, and the
    last one (all items done) where an earlier line was written: a cell of a few seconds (the
    embedded default's) writes nothing between pytest's dots, a cell of an hour a line every
    ``every`` seconds and its end."""

    def __init__(self, cell: str, total: int, sink: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic, every: float = EVERY) -> None:
        self.cell, self.total, self.sink, self.clock, self.every = cell, total, sink, clock, every
        self.start = self.last = clock()
        self.written = False

    def __call__(self, done: int) -> None:
        now = self.clock()
        if now - self.last < self.every and not (done >= self.total and self.written):
            return
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        self.sink(f"{self.cell}: {done}/{self.total} items, {rate:.1f} items/s, ETA {_clock(left)}")
        self.last, self.written = now, True


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
