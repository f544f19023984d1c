"""What a backend does with clips longer than its audio window.

``truncate`` keeps the first window (the item's result carries a note saying so); ``chunk`` cuts
the clip into consecutive windows that the model hears as successive audios of one turn (noted,
too); ``error`` refuses the item, and the rest of the batch runs. A prompt too long for the model's
context is refused here too (``harness.models._context``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from harness.models.fast_path import LONG_AUDIO


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


def long_audio_notes(requests: Sequence, window: int, policy: str) -> dict[int, str]:
    """The note, naming the item, for each clip over the window that the policy lets through
    (by index); under ``error`` those are refused instead, so none."""
    check_policy(policy)
    if policy == "error":
        return {}
    notes = {}
    for i, r in enumerate(requests):
        if len(r.audio) > window:
            seconds, limit = len(r.audio) / 16_000, window / 16_000
            what = (f"truncated to the model's {limit:.0f} s audio window" if policy == "truncate"
                    else f"given to the model as {piece_count(len(r.audio), window)} audios of "
                    f"at most {limit:.0f} s")
            notes[i] = f"{r.name}: {seconds:.1f} s clip {what}"
    return notes


def run_fitting(requests: Sequence, window: int, policy: str, run_all: Callable[[list], list],
                refuse: Callable[[Any, str], Any], refused: Mapping[int, str] | None = None) -> list:
    """``run_all`` over the requests the policy lets through, each result carrying its clip's
    note (results have ``notes``: a Generation or LabelScores); ``refuse(request, reason)`` for
    each of the rest, and for those ``refused`` names already (by index, with the reason)."""
    reasons = dict(refused or {})
    for i, r in enumerate(requests):
        if policy == "error" and len(r.audio) > window:
            reasons[i] = (f"{len(r.audio) / 16_000:.1f} s clip is longer than the model's "
                          f"{window / 16_000:.0f} s audio window")
    notes = long_audio_notes(requests, window, policy)
    fit = [r for i, r in enumerate(requests) if i not in reasons]
    done = iter(run_all(fit) if fit else [])
    out = []
    for i, r in enumerate(requests):
        if i in reasons:
            out.append(refuse(r, reasons[i]))
        else:
            result = next(done)
            out.append(replace(result, notes=(*result.notes, notes[i])) if i in notes else result)
    return out
