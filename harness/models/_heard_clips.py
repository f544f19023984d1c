"""Clips heard lately: each one's keys and values up to its last audio token, kept for the prompts
that follow.

A grid asks one model about each clip with several prompts (the base prompt and its decodings,
chain-of-thought, readout, then the verifier with each candidate), each call prefilling the
clip's audio again: about 150 of a 6-second clip's tokens in each of four prefills, and the audio
encoder each time. The chat text before the prompt (the template's start, the audio's
placeholders) is the same for every prompt, so its keys and values are too (causal attention:
a position sees only what precedes it). A backend keeps them per clip, within a memory budget,
and a later prefill of the clip with another prompt starts from them: the audio is encoded and
prefilled once per clip while it stays here (harness.models._shared_prompt).

What is kept is keyed by the clip's content hash (the request's ``audio_hash``) and checked
against the tokens it stands for, so a clip heard under another chat text is prefilled afresh.
The budget holds a run's chunk of clips; a batch that finds none of its clips here while there
is no room for them (the next chunk has begun) starts the store over. One store in a process
holds clips at a time (a worker keeps every model it loaded: their stores together would take
a budget each): the backend that keeps clips last lets go of what another kept. A batch that
runs out of memory lets go of them too (what it frees is worth more than what it would save).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_HOLDING: weakref.ref | None = None  # the store that holds clips now


@dataclass(frozen=True)
class Heard:
    """One clip's chat text through its last audio placeholder: the token row (one placeholder
    per audio), the audios and their token counts, and per layer its keys and values
    (tokens, heads, dim) past the template's shared start."""

    row: tuple[int, ...]
    pieces: int
    counts: tuple[int, ...]
    layers: tuple[tuple[Any, Any], ...]

    @property
    def length(self) -> int:
        return int(self.layers[0][0].shape[0])

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size()
                   for k, v in self.layers)


class HeardClips:
    """The :class:`Heard` parts of recent clips by content hash, within ``budget`` bytes."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._kept: dict[str, Heard] = {}
        self.held = 0
        self.hits = self.misses = 0

    def find(self, keys: Sequence[str]) -> list[Heard | None]:
        """What is kept for each key (None: not heard, or no longer kept)."""
        found = [self._kept.get(key) for key in keys]
        hit = sum(f is not None for f in found)
        self.hits, self.misses = self.hits + hit, self.misses + len(found) - hit
        return found

    def keep(self, keys: Sequence[str], heard: Sequence[Heard], found_none: bool) -> None:
        """Keep what fits of ``heard``; ``found_none``: the batch found none of its clips here,
        and where these do not fit either, what is kept is of clips gone by: it is let go."""
        global _HOLDING
        holding = _HOLDING() if _HOLDING is not None else None
        if holding is not self:
            if holding is not None:
                holding.clear()
            _HOLDING = weakref.ref(self)
        sizes = [h.nbytes for h in heard]
        if found_none and self.held + sum(sizes) > self.budget:
            self.clear()
        for key, h, size in zip(keys, heard, sizes):
            if key not in self._kept and self.held + size <= self.budget:
                self._kept[key] = h
                self.held += size

    def clear(self) -> None:
        self._kept.clear()
        self.held = 0

    def __len__(self) -> int:
        return len(self._kept)
