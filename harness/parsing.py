"""Model text -> probability vector over the corpus's classes.

Rules, tried in order; the first that finds something decides:

1. ``json_dict``: a ``{label: number, ...}`` object (the last one in the text, so a chain-of-thought
   answer's final JSON wins); keys match labels case-insensitively and by common aliases.
2. ``emotion_list``: ``['disgust', 'neutral']`` -> uniform over the recognised emotions.
3. ``float_list``: ``[0.3, 0.2, 0.5]`` (two numbers or more) -> padded/trimmed to K, normalised.
4. ``keyword``: exactly one known emotion named in free text -> one-hot.
5. ``single_number``: ``0.54`` or ``[0.54]`` is not a distribution -> invalid.

A dictionary or list that is found but holds negative, NaN, infinite or all-zero values makes the
output invalid: it never falls through to keyword matching, which would invent a one-hot.

The text is normalised first (Unicode NFKC, zero-width characters removed), so a full-width or
zero-width-laced label still matches. In a dictionary, a key repeated verbatim keeps its last value
(as ``json.loads`` does); keys that name no label are left out and named in the verdict's
``reason``, and a dictionary in which less than half of the probability mass has a recognised
label is invalid.

The dictionary and list rules read from the end of the text back, no further than
:data:`READ_AT_MOST` (each dictionary or list counts one, each value or entry one more), so that
no answer costs more than a few milliseconds; an answer with no distribution within that reach is
invalid, its reason saying where reading stopped.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import orjson

from harness._dict_pairs import NUMBER, pairs
from harness._label_index import ALIASES, LabelIndex, label_index

__all__ = ["ALIASES", "READ_AT_MOST", "RULES", "Parsed", "Verdict", "parse_distribution",
           "parse_score", "parse_verdict"]

RULES = ("json_dict", "emotion_list", "float_list", "keyword", "single_number")


# Every pattern here, as in harness._dict_pairs, matches in time linear in the text.
# a dictionary's or a list's text, found on the reversed text: the same matches (none can
# overlap another), met from the answer's end, so that no more of them are built than are read
_DICT_REVERSED = re.compile(r"\}[^{}]*\{")
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_LIST_REVERSED = re.compile(r"\]([^\[\]]*)\[")
_IS_NUMBER = re.compile(r"^(?:" + NUMBER + r")$", re.I)
_NUMBER_AT = re.compile(NUMBER, re.I)
_SCORE = re.compile(r"\+?(?:\d+(?:\.\d*)?|\.\d+)")
_SPACE_RUN = re.compile(r"\s*")
_SPACE_OR_TICK_RUN = re.compile(r"[\s`]*")
_REST_OF_LONE_NUMBER = re.compile(r"\s*\]?[\s`.]*")


@dataclass(frozen=True)
class Parsed:
    """The parser's verdict on one model output.

    Attributes:
        probs: (K,) probabilities summing to 1, or None when invalid.
        rule: Which rule matched (one of :data:`RULES`), or None when none did.
        valid: Whether ``probs`` is a usable distribution.
        reason: Why the output is invalid; for a valid one, what was left out (keys naming no
            label), else "".
    """

    probs: np.ndarray | None
    rule: str | None
    valid: bool
    reason: str = ""


def _number(token: str) -> float:
    """A number token's value; ``70%`` is 0.7, so that a percent beside a plain share weighs as
    much as it says."""
    if token.endswith("%"):
        return float(token[:-1]) / 100
    return float(token)


class Verdict(NamedTuple):
    """:class:`Parsed` with the distribution as a list of floats, as a record keeps it (the
    harness's own way: no array is built for each of an item's candidates).

    Attributes:
        probs: K probabilities summing to 1, or None when invalid.
        rule: Which rule matched, or None when none did.
        reason: As :attr:`Parsed.reason`.
    """

    probs: list[float] | None
    rule: str | None
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.probs is not None


def _finish(values: list[float], rule: str) -> Verdict:
    """Normalise a found vector, or reject it (no fall-through) if it is not a distribution."""
    total = sum(values)  # NaN or inf anywhere makes the sum non-finite
    if not math.isfinite(total) and not all(map(math.isfinite, values)):
        return Verdict(None, rule, "NaN or infinite value")
    if min(values) < 0:
        return Verdict(None, rule, "negative value")
    if not math.isfinite(total):  # finite values whose sum is not (1e308 twice): scaled first
        top = max(values)
        values = [value / top for value in values]
        total = sum(values)
    if total <= 0:
        return Verdict(None, rule, "all values are zero")
    return Verdict([value / total for value in values], rule)  # numpy's division, bit for bit


READ_AT_MOST = 1_000
"""How far back from an answer's end the dictionary and list rules read: each dictionary or list
counts one, and each of its values or entries one more. A model's answer holds a few dozen; a text
of thousands of small dictionaries had taken over 50 ms. An answer whose dictionaries (or lists)
give no distribution within it is invalid, its reason saying so: what was not read is not
guessed at by a later rule (a keyword's one-hot from a dictionary's label names)."""


_DICTIONARIES, _LISTS = "values of its dictionaries", "entries of its lists"  # what was read


def _from_dicts(text: str, idx: LabelIndex, unknown: list[str], unread: list[str]
                ) -> Verdict | None:
    """The last dictionary with a recognised label; keys naming no label go into ``unknown``,
    and :data:`_DICTIONARIES` into ``unread`` where :data:`READ_AT_MOST` stopped the reading."""
    left = READ_AT_MOST
    for match in _DICT_REVERSED.finditer(text[::-1]):
        found, values = pairs(match.group()[::-1], left - 1)
        left -= 1 + values
        if left < 0:
            unread.append(_DICTIONARIES)
            return None
        latest = dict(found)  # a key repeated verbatim: its last value, as in JSON
        values_of, strays, stray_mass = [0.0] * idx.k, [], 0.0
        for key, number in latest.items():
            i, value = idx.lookup(key), _number(number)
            if i is None:
                strays.append(key)
                stray_mass += value if math.isfinite(value) and value > 0 else 0.0
            else:
                values_of[i] += value
        if len(strays) == len(latest):
            unknown += strays
            continue
        parsed = _finish(values_of, "json_dict")
        if not strays or not parsed.valid:
            return parsed
        strays_named = f"keys naming no label: {_named(strays)}"
        if sum(values_of) < stray_mass:
            return Verdict(None, "json_dict", "less than half of the probability mass has "
                                              f"a recognised label ({strays_named})")
        return Verdict(parsed.probs, "json_dict", f"left out {strays_named}")
    return None


def _named(keys: list[str], most: int = 5) -> str:
    """``'Boredom', 'null'`` (the first few, each cut short)."""
    shown = ", ".join(repr(k[:40]) for k in keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _list_tokens(text: str, unread: list[str]) -> list[list[str]]:
    """Each list's entries, the last list first, as far back as :data:`READ_AT_MOST` allows
    (:data:`_LISTS` goes into ``unread`` where it stopped the reading)."""
    lists, left = [], READ_AT_MOST
    for match in _LIST_REVERSED.finditer(text[::-1]):
        body = match.group(1)[::-1]
        left -= 2 + body.count(",")  # the list and its entries
        if left < 0:
            unread.append(_LISTS)
            break
        tokens = [t.strip().strip("'\"` ").strip() for t in body.split(",")]
        lists.append([t for t in tokens if t])
    return lists


def _from_emotion_lists(lists: list[list[str]], idx: LabelIndex) -> Verdict | None:
    for tokens in lists:
        hits = {idx.lookup(t) for t in tokens if not _IS_NUMBER.match(t)} - {None}
        if hits:
            return _finish([1.0 if i in hits else 0.0 for i in range(idx.k)], "emotion_list")
    return None


def _from_float_lists(lists: list[list[str]], k: int) -> Verdict | None:
    for tokens in lists:
        if len(tokens) >= 2 and all(_IS_NUMBER.match(t) for t in tokens):
            numbers = [_number(t) for t in tokens][:k]
            return _finish(numbers + [0.0] * (k - len(numbers)), "float_list")
    return None


def _keyword_hits(text: str, idx: LabelIndex) -> set[int | None]:
    """Every class named in free text: known spellings as whole words, case-insensitively, the
    spelling of the most words taken where several start at one word."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a letter whose lower case is longer: positions would shift
        return _keyword_hits_slow(text, idx)
    if not any(word in lowered for word in idx.screen):  # a few fast searches first
        return set()
    return {idx.lookup(spelling) for spelling in set(idx.spellings.findall(lowered))}


def _keyword_hits_slow(text: str, idx: LabelIndex) -> set[int | None]:
    """Text whose lower case changes its length (rare letters): the regex over the text itself."""
    keys = sorted(idx.keys, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in keys) + r")\b", re.I)
    return {idx.lookup(word) for word in pattern.findall(text)}


def _from_keywords(text: str, idx: LabelIndex) -> Verdict | None:
    hits = _keyword_hits(text, idx)
    if len(hits) != 1:
        return None
    (hit,) = hits
    if hit is None:
        return None
    values = [0.0] * idx.k
    values[hit] = 1.0
    return Verdict(values, "keyword")


def _clean(text: str) -> str:
    """NFKC (full-width and compatibility forms to their plain letters and digits) without
    zero-width characters."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    for mark in _ZERO_WIDTH:  # replace() where one is present: translate() with a table took
        if mark in text:  # 6 ms a 100 kB answer, character by character
            text = text.replace(mark, "")
    return text


def _plain_json(text: str, idx: LabelIndex) -> Verdict | None:
    """The answer when the text is one plain JSON object of label keys and numbers, the form a
    model is asked for, read by orjson (a twentieth of the general rules' time); None for
    anything else, which the general rules read. Only text on which both readings agree takes
    this way: ASCII, no escapes, one object, every key a run of letters, spaces, ``_``, ``/``
    and ``-`` that starts and ends with a letter, every value a number, fewer pairs than
    :data:`READ_AT_MOST` (orjson would read any number)."""
    body = text.strip()
    if (not body.startswith("{") or not body.endswith("}") or "\\" in body
            or body.count("{") != 1 or body.count("}") != 1 or not body.isascii()
            or body.count(":") >= READ_AT_MOST):  # more pairs than the general rules read
        return None
    try:  # strict JSON: NaN, Infinity and 1e999 are refused (the general rules read them)
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    positions = idx.plain_positions(tuple(found)) if found else None
    if positions is None:
        return None  # a key naming no label: the general rules read it
    values = [0.0] * idx.k
    for i, value in zip(positions, found.values()):
        if type(value) not in (int, float) or abs(value) > 1e300:
            return None  # a huge number: the general rules read it
        values[i] += float(value)
    return _finish(values, "json_dict")


def _parse(text: str, idx: LabelIndex) -> Verdict:
    plain = _plain_json(text, idx) if text[:1] == "{" or text[:1].isspace() else None
    return plain if plain is not None else _parse_by_rules(text, idx)


def _parse_by_rules(text: str, idx: LabelIndex) -> Verdict:
    text = _clean(text)
    unknown: list[str] = []
    unread: list[str] = []  # what READ_AT_MOST stopped: then nothing is guessed from the rest
    found = _from_dicts(text, idx, unknown, unread) if "{" in text else None
    if found is None and not unread and "[" in text:
        lists = _list_tokens(text, unread)
        found = _from_emotion_lists(lists, idx) or _from_float_lists(lists, idx.k)
    if found is None and not unread:
        found = _from_keywords(text, idx)
    if found is not None:
        return found
    if not unread and _is_lone_number(text):
        return Verdict(None, "single_number", "a single number is not a distribution")
    reasons = [f"no key names a label: {_named(unknown)}"] if unknown else []
    reasons += [f"read back from the end for {READ_AT_MOST:,} {what} without a distribution; "
                "not read further" for what in unread]
    rule = "json_dict" if unknown or unread == [_DICTIONARIES] else None
    return Verdict(None, rule, "; ".join(reasons) or "no distribution found")


def _is_lone_number(text: str) -> bool:
    """One number, perhaps in brackets or a ``json`` code fence, and nothing else."""
    at = _run_end(_SPACE_OR_TICK_RUN, text, 0)
    if text[at:at + 4].lower() == "json":
        at = _run_end(_SPACE_OR_TICK_RUN, text, at + 4)
    if text.startswith("[", at):
        at = _run_end(_SPACE_RUN, text, at + 1)
    number = _NUMBER_AT.match(text, at)
    if number is None:
        return False
    return _run_end(_REST_OF_LONE_NUMBER, text, number.end()) == len(text)


def _run_end(pattern: re.Pattern[str], text: str, at: int) -> int:
    """Where a run of ``pattern`` (which may match nothing) starting at ``at`` ends."""
    run = pattern.match(text, at)
    return run.end() if run else at


def parse_distribution(text: str, labels: Sequence[str]) -> Parsed:
    """Parse a model's answer into a distribution over ``labels``. Never raises on a str.

    Args:
        text: The model's raw output.
        labels: The corpus's class names, in prompt order.

    Returns:
        A :class:`Parsed`; ``.valid`` is False (with ``.reason``) when no distribution was found.
    """
    verdict = parse_verdict(text, labels)
    probs = None if verdict.probs is None else np.array(verdict.probs)
    return Parsed(probs, verdict.rule, probs is not None, verdict.reason)


def parse_verdict(text: str, labels: Sequence[str]) -> Verdict:
    """:func:`parse_distribution` with the distribution as a list of floats (:class:`Verdict`),
    the same values bit for bit. Never raises on a str."""
    if not isinstance(text, str):
        return Verdict(None, None, f"not text: {type(text).__name__}")
    try:
        return _parse(text, label_index(tuple(labels)))
    except Exception as exc:  # a parser bug must cost one item, not the run
        return Verdict(None, None, f"parser error: {type(exc).__name__}: {exc}")


def parse_score(text: str) -> float | None:
    """A verifier's reply -> its score, or None when the reply is not a score.

    A score is a reply that is one number in [0, 1]: surrounding whitespace, a ``Score:`` label
    and a closing full stop are allowed; anything else (a sentence, a dictionary, a range, ``1e-3``,
    ``0,8``) is not a score.
    """
    if not isinstance(text, str):
        return None
    body = text.strip()
    if body.endswith("."):
        body = body[:-1].rstrip()
    if body[:5].lower() == "score":
        body = body[5:].lstrip()
        body = body[1:].lstrip() if body[:1] in (":", "=") else body
    if _SCORE.fullmatch(body) is None:
        return None
    value = float(body)
    return value if 0.0 <= value <= 1.0 else None
