"""What a backend does with clips longer than its audio window.

``truncate`` keeps the first window (a warning names the item, so the cell records it as a
note); ``chunk`` cuts the clip into consecutive windows that the model hears as successive
audios of one turn (a warning says so, too); ``error`` refuses the item, and the rest of the
batch runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

LONG_AUDIO = ("truncate", "chunk", "error")


def check_policy(policy: str) -> str:
    if policy not in LONG_AUDIO:
        raise ValueError(f"long_audio must be one of {LONG_AUDIO}, not {policy!r}")
    return policy


def piece_count(samples: int, window: int) -> int:
    """How many pieces :func:`chunks` cuts a clip of ``samples`` into."""
    return max(1, -(-samples // window))


def chunks(audio: np.ndarray, window: int) -> list[np.ndarray]:
    """Consecutive pieces of at most ``window`` samples (one piece for a clip that fits)."""
    return [audio[i * window: (i + 1) * window] for i in range(piece_count(len(audio), window))]


def split_over_long(requests: Sequence, window: int, policy: str) -> set[int]:
    """Warn, naming each item, about clips over the window; the indexes to refuse."""
    check_policy(policy)
    long = [i for i, r in enumerate(requests) if len(r.audio) > window]
    if policy == "error":
        return set(long)
    for i in long:
        r = requests[i]
        seconds, limit = len(r.audio) / 16_000, window / 16_000
        what = (f"truncated to the model's {limit:.0f} s audio window" if policy == "truncate" else
                f"given to the model as {piece_count(len(r.audio), window)} audios of at most "
                f"{limit:.0f} s")
        warnings.warn(f"{r.name}: {seconds:.1f} s clip {what}", stacklevel=3)
    return set()


def run_fitting(requests: Sequence, window: int, policy: str, run_all: Callable[[list], list],
                refuse: Callable[[object, str], object]) -> list:
    """``run_all`` over the requests the policy lets through; ``refuse(request, reason)`` for
    each of the rest."""
    refused = split_over_long(requests, window, policy)
    fit = [r for i, r in enumerate(requests) if i not in refused]
    done = iter(run_all(fit) if fit else [])
    return [refuse(r, f"{len(r.audio) / 16_000:.1f} s clip is longer than the model's "
                   f"{window / 16_000:.0f} s audio window") if i in refused else next(done)
            for i, r in enumerate(requests)]
