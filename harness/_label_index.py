"""The spellings of a label set's classes: from any key or word a model writes to the class it
names, built once per label set and remembered (:func:`label_index`)."""

from __future__ import annotations

import re
from functools import lru_cache

# Each concept's spellings; a label is matched through the concept its own name belongs to.
ALIASES = {
    "neutral": ("neutral", "neutral state", "neutrality", "no emotion"),
    "happy": ("happy", "happiness", "joy", "joyful", "joyous"),
    "anger": ("anger", "angry"),
    "sad": ("sad", "sadness"),
    "fear": ("fear", "fearful", "afraid", "scared"),
    "disgust": ("disgust", "disgusted"),
    "surprise": ("surprise", "surprised"),
    "contempt": ("contempt", "contemptuous"),
    "frustration": ("frustration", "frustrated"),
    "excited": ("excited", "excitement"),
}
_CONCEPT_OF = {alias: concept for concept, names in ALIASES.items() for alias in names}
WORD = re.compile(r"\w+")
_PLAIN_KEY = re.compile(r"[A-Za-z](?:[A-Za-z _/-]*[A-Za-z])?")


class LabelIndex:
    """Lookups from any spelling to a class index, built once per label set."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.k = len(labels)
        self.index: dict[str, int] = {}
        for i, label in enumerate(labels):
            key = _normalise(label)
            concept = _CONCEPT_OF.get(key, key)
            for alias in (key, *ALIASES.get(concept, ())):
                self.index.setdefault(alias, i)
        # keywords: a key of n words is the text from a word to the n-th after it, the most
        # words first (the word-by-word reading), found by one regex: the spellings grouped by
        # their first letter, that letter matched before the look back for a word boundary (the
        # look back tried first at every character, and a step of Python per word before it, had
        # taken 7 and 70 ms on 100 kB of "no ")
        spans = {key: len(WORD.findall(key)) for key in self.index
                 if WORD.fullmatch(key[0]) and WORD.fullmatch(key[-1])}  # as \b...\b needs
        # what a text must hold for any keyword to be in it: the keys' first words that hold
        # none of the others ("sad" for "sadness" too), each a search of the whole text
        first_words = {WORD.findall(key)[0] for key in spans}
        self.screen = tuple(sorted(word for word in first_words
                                   if not any(other != word and other in word
                                              for other in first_words)))
        self.keys = set(spans)
        by_letter: dict[str, list[str]] = {}
        for key in sorted(spans, key=lambda key: (-spans[key], key)):
            by_letter.setdefault(key[0], []).append(re.escape(key[1:]))
        self.spellings = re.compile("(?:" + "|".join(
            f"{re.escape(first)}(?<!\\w.)(?:{'|'.join(rests)})" for first, rests in by_letter.items())
            + r")(?!\w)")
        self._seen: dict[str, int | None] = {}  # raw spelling -> index: models repeat their keys
        self._plain: dict[str, int | None] = {}  # the same for a plain JSON key (see plain_lookup)
        self._plain_rows: dict[tuple[str, ...], tuple[int, ...]] = {}  # an answer's keys, in order

    def lookup(self, name: str) -> int | None:
        try:
            return self._seen[name]
        except KeyError:
            found = self.index.get(_normalise(name))
            if len(self._seen) < _MEMO_KEYS and len(name) <= _MEMO_KEY_LENGTH:
                self._seen[name] = found
            return found

    def plain_lookup(self, key: str) -> int | None:
        """The index of a plain JSON answer's key: None unless it is a run of letters, spaces,
        ``_``, ``/`` and ``-`` that starts and ends with a letter and names a label."""
        try:
            return self._plain[key]
        except KeyError:
            found = self.lookup(key) if _PLAIN_KEY.fullmatch(key) else None
            if len(self._plain) < _MEMO_KEYS and len(key) <= _MEMO_KEY_LENGTH:
                self._plain[key] = found
            return found

    def plain_positions(self, keys: tuple[str, ...]) -> tuple[int, ...] | None:
        """Each key's :meth:`plain_lookup`, or None if one names no label; remembered for a short
        row of short keys (a model writes the same keys in the same order, answer after answer)."""
        try:
            return self._plain_rows[keys]
        except KeyError:
            found = [self.plain_lookup(key) for key in keys]
            if None in found:
                return None
            row = tuple(i for i in found if i is not None)  # all of them
            if len(self._plain_rows) < _MEMO_KEYS and sum(map(len, keys)) <= 32 * self.k:
                self._plain_rows[keys] = row
            return row


_MEMO_KEYS = 10_000  # spellings remembered per label set (a model's own keys, not a text's)
_MEMO_KEY_LENGTH = 64  # characters of the longest spelling remembered: 10,000 keys of 100 kB each
# (a model that writes a long run of letters before each colon) would have held 1 GB


def _normalise(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


@lru_cache(maxsize=64)
def label_index(labels: tuple[str, ...]) -> LabelIndex:
    return LabelIndex(labels)
