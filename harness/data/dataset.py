"""Item and Dataset: the annotators' votes per utterance and the corpus they belong to."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import numpy as np

from harness.data.audio import TARGET_SR, load_audio, read_audio
from harness.data.clips import content_hash
from harness.data.problems import Problem


@dataclass(frozen=True, eq=False)
class Item:
    """One utterance and its annotators' votes.

    Attributes:
        id: The corpus's utterance id.
        audio_path: Where the clip is (it may not exist: audio is read only on demand).
        transcript: What is said, or ``""`` when the corpus has no transcript for it.
        votes: Raw vote counts per class, in ``labels`` order (float: split votes are fractional).
        labels: The corpus's class names.
        meta: Corpus-specific extras (speaker, split, dropped out-of-set votes, ...).
    """

    id: str
    audio_path: Path
    transcript: str
    votes: np.ndarray
    labels: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        votes = np.asarray(self.votes, dtype=np.float64).copy()
        votes.flags.writeable = False
        object.__setattr__(self, "votes", votes)

    @property
    def soft(self) -> np.ndarray:
        """Votes normalised to sum to 1."""
        return self.votes / self.votes.sum()

    @property
    def majority(self) -> str | None:
        """The class with the most votes, or None when the top count is tied."""
        top = self.votes.max()
        winners = np.flatnonzero(np.isclose(self.votes, top))
        return self.labels[winners[0]] if winners.size == 1 else None

    @cached_property  # read several times a cell (bins, evidence), and the votes never change
    def entropy(self) -> float:
        """Entropy of :attr:`soft` in bits: the item's ambiguity."""
        p = self.soft[self.soft > 0]
        return float(-(p * np.log2(p)).sum()) + 0.0

    def load_audio(self, sr: int = TARGET_SR) -> np.ndarray:
        """The clip as mono float32 at ``sr`` Hz (warning what changed); raises AudioError
        naming the file."""
        return load_audio(self.audio_path, sr=sr)

    def read_audio(self, sr: int = TARGET_SR) -> tuple[np.ndarray, list[str]]:
        """The clip and a note for each change made to it (down-mixing, resampling); raises
        AudioError naming the file."""
        return read_audio(self.audio_path, sr=sr)


class Dataset(Sequence[Item]):
    """A loaded corpus: a sequence of :class:`Item` plus what the loader found wrong.

    Attributes:
        name: Corpus name (``"iemocap"``, ``"msp_podcast"``, ``"crema_d"``).
        labels: Class names in prompt order.
        root: The corpus root it was read from.
        options: The loader options in force.
        problems: Every :class:`Problem` found while loading, with file and line.
        skipped: Items left out on purpose, counted by reason (e.g. consensus not in the classes).
        drawn_from: For a subset (a ``--limit`` subsample, a slice), the number of items of the
            corpus it was drawn from; None for the whole corpus as loaded.
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str],
        items: Sequence[Item],
        root: Path,
        options: Mapping[str, Any] | None = None,
        problems: Sequence[Problem] = (),
        skipped: Mapping[str, int] | None = None,
        drawn_from: int | None = None,
    ) -> None:
        self.name = name
        self.drawn_from = drawn_from
        self.labels = tuple(labels)
        self.root = Path(root)
        self.options = dict(options or {})
        self.problems = list(problems)
        self.skipped = Counter(skipped or {})
        self._items = list(items)
        self._manifest: dict[bool, str] = {}

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Item: ...
    @overload
    def __getitem__(self, index: slice) -> Dataset: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return self._items[index]

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} items, labels={list(self.labels)})"

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self._items]

    def item_by_id(self, item_id: str) -> Item:
        """The item with this id (raises KeyError when there is none)."""
        return self._by_id[item_id]

    @cached_property
    def _by_id(self) -> dict[str, Item]:  # built once: a run looks items up chunk by chunk
        return {item.id: item for item in self._items}

    @property
    def votes(self) -> np.ndarray:
        """(N, K) raw vote counts."""
        return np.stack([item.votes for item in self._items]) if self._items else np.zeros(
            (0, len(self.labels))
        )

    @property
    def soft(self) -> np.ndarray:
        """(N, K) annotator distributions."""
        votes = self.votes
        return votes / votes.sum(axis=1, keepdims=True)

    def left_out(self, examples: int = 3) -> dict[str, Any]:
        """What the loader left out, for a record: the items skipped on purpose (by reason), the
        problems it found by severity (``error``: data dropped because of it), and the first
        ``examples`` of them, each with its file and line (its first 300 characters)."""
        severities = Counter(problem.severity for problem in self.problems)
        return {"skipped": dict(self.skipped),
                "problems": {"error": severities["error"], "warning": severities["warning"]},
                "first_problems": [str(problem)[:300] for problem in self.problems[:examples]]}

    def with_votes(self, votes: np.ndarray) -> Dataset:
        """The same items scored against other votes (one row per item): the annotator reference
        scores one held-out rater against the remaining ones."""
        items = [replace(item, votes=row) for item, row in zip(self._items, votes)]
        return Dataset(self.name, self.labels, items, self.root, self.options, self.problems,
                       self.skipped, self.drawn_from)

    def subset(self, indices: Sequence[int]) -> Dataset:
        """A Dataset of the items at ``indices`` (same labels, root, options and problems), which
        says how many items the corpus it was drawn from has (:attr:`drawn_from`)."""
        return Dataset(
            self.name,
            self.labels,
            [self._items[i] for i in indices],
            self.root,
            self.options,
            self.problems,
            self.skipped,
            self.drawn_from if self.drawn_from is not None else len(self),
        )

    def manifest_hash(self, include_audio: bool = True) -> str:
        """SHA-256 over the corpus name, labels, item ids, votes and (optionally) each clip's
        content hash (XXH3-128 of its file's bytes, :mod:`harness.data.clips`).

        Reports record it so that two results can be told apart when their data differ.
        A missing clip hashes as ``"missing"`` rather than failing; a clip the runner has read
        already is not read again (:mod:`harness.data.clips`).
        """
        if include_audio not in self._manifest:
            h = hashlib.sha256()
            h.update(f"{self.name}\n{self.labels!r}\n".encode())
            for item in self._items:
                h.update(item.id.encode() + b"\0")
                h.update(np.ascontiguousarray(item.votes, dtype="<f8").tobytes())
                if include_audio:
                    h.update(content_hash(item.audio_path).encode())
            self._manifest[include_audio] = h.hexdigest()
        return self._manifest[include_audio]
