"""How fast this machine is at the moment, printed beside a CPU benchmark's figures so that runs
of different days can be compared: the 2-core development machine has run between about 40% and
100% of its best speed from one session to the next, and a figure alone could not say whether
the code or the machine had changed.

    python -m bench.machine_speed

Two probes (about two seconds in all):

- **interpreter**: ``bench/core.py``'s first figure, its 100,000 mixed model outputs parsed in
  one pass (the same code), so that it compares with every figure that script has given, and
  with its quiet-machine figure (:data:`QUIET_PARSE`);
- **memory**: 16-bit samples converted to float32 into memory not yet in the cache, GB written a
  second, the best of five (what reading a cold cell's clips is bound by; on one day it ran 20%
  slow while the interpreter ran at its best). No quiet figure is kept for it: compare it with
  the same line of another run.

:func:`speed_noted` prints :func:`speed_line` at a CPU benchmark's start and its end (the machine
may change while it runs).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np

QUIET_PARSE = 107_000
"""``bench/core.py``'s mixed outputs parsed a second on the development machine when quiet
(106,774 in the clean-clone CI run at ``ae9d098``; 105,971-106,402 on other quiet days)."""

OUTPUTS = 100_000  # bench/core.py's N: its figure and this one are the same measurement
CLIPS, SAMPLES = 64, 96_000  # 64 six-second 16 kHz clips: 24 MiB of float32, more than a cache


def _best(run, repeats: int = 5) -> float:
    """The shortest of ``repeats`` timings of ``run()``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def parse_rate() -> float:
    """Mixed outputs parsed a second, as ``bench/core.py`` counts them."""
    from bench.core import parse_timed

    return OUTPUTS / parse_timed(OUTPUTS)[0]


def conversion_rate() -> float:
    """GB of float32 written a second converting 16-bit clips into new memory."""
    clips = np.random.default_rng(0).integers(-2**15, 2**15, (CLIPS, SAMPLES), dtype=np.int16)

    def convert() -> None:
        for clip in clips:  # each into memory of its own, as each clip's samples are
            np.multiply(clip, np.float32(2**-15), dtype=np.float32)

    return CLIPS * SAMPLES * 4 / _best(convert) / 1e9


def speed_line() -> str:
    """``machine speed: interpreter 98,765 outputs/s (92% of a quiet machine's 107,000,
    bench/core.py's parse), memory 13.0 GB/s (int16 to float32 into new memory)``."""
    parse = parse_rate()
    return (f"machine speed: interpreter {parse:,.0f} outputs/s ({parse / QUIET_PARSE:.0%} of a "
            f"quiet machine's {QUIET_PARSE:,}, bench/core.py's parse), memory "
            f"{conversion_rate():.1f} GB/s (int16 to float32 into new memory)")


@contextlib.contextmanager
def speed_noted() -> Iterator[None]:
    """:func:`speed_line` before the block and again, ``at the end, ...``, after it."""
    print(speed_line())
    yield
    print(f"at the end, {speed_line()}")


if __name__ == "__main__":
    print(speed_line())
