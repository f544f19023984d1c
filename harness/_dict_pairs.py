"""A dictionary's ``key: number`` pairs, read in time linear in its text: the dictionary rule's
scan (:mod:`harness.parsing`)."""

from __future__ import annotations

import math
import re
import string

# Every pattern here matches in time linear in the text: no two adjacent parts can match the same
# characters (a run of spaces that could belong to either side is what made the old patterns
# backtrack for seconds on a few hundred spaces).
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?|[-+]?(?:nan|infinity|inf)\b"
# a separator that a key may end at and the number after it; the key is read backwards from the
# separator (_key_before). The lookbehinds pass only a separator after a letter, a key symbol or a
# quote, or after spaces that do not follow a digit or a sign within four (what a key and its
# quote end with; looked at once the separator is found, so that the search still skips from ":"
# to ":"); (?!...) turns one away where the next character, or the one after a quote, can start
# no space and no number. Floods of "=1", ": 1 " or "=" had tried the rest 25,000 to 100,000
# times, each with a step of Python: 19 to 38 ms. (?=(\s*))\1 takes the whole run of spaces and
# never gives it back (an atomic group). _A_NUMBER_FOLLOWS then turns away a separator that no
# number follows (spaces and quotes aside: a sign, a digit, a point, or nan, inf or infinity as a
# word), before the rest is tried: a flood of such separators after a letter ("énan=" 20,000
# times) had cost 5.5 ms, now 2.6 (tried before the look back, it cost floods of "=1" a third
# more).
_NO_NUMBER_STARTS = r"[!#$%&()*,/:;<=>?@\[\\\]^_`{|}~a-hj-mo-zA-HJ-MO-Z]"  # nor a space or quote
_NO_KEY_ENDS = r"[\d!#$%&()*+,.:;<=>?@\[\\\]^`{|}~]"  # a digit or a sign, and spaces after it
_ONE_TO_FOUR_SPACES = [r"\s" * n for n in range(1, 5)]
_A_NUMBER_FOLLOWS = r"""(?=[\s"']*(?:[-+.\d]|(?:nan|inf(?:inity)?)\b))"""  # after spaces and quotes
_VALUE = re.compile(r"""[:=](?:(?<=[^\W\d].|[/"'-].)|(?<=\s.)"""
                    + "".join(f"(?<!{_NO_KEY_ENDS}{spaces}.)" for spaces in _ONE_TO_FOUR_SPACES)
                    + rf"""){_A_NUMBER_FOLLOWS}(?!{_NO_NUMBER_STARTS}|["']{_NO_NUMBER_STARTS})"""
                    r"""(?=(\s*))\1(?:["'](?=(\s*))\2)?(""" + NUMBER + ")", re.I)
_KEY_SYMBOL_CHARS = " _/-"  # a key is letters (any script) and these
_KEY_SYMBOLS = frozenset(_KEY_SYMBOL_CHARS)
_NO_KEY_SYMBOLS = str.maketrans("", "", _KEY_SYMBOL_CHARS)
_ASCII_RUN = string.ascii_letters + _KEY_SYMBOL_CHARS  # what a key's run is, in ASCII
_KEY_RUN_REVERSED = re.compile(r"[^\W\d]*(?:[ /-]+[^\W\d]*)*").match  # each repeat one class


def pairs(body: str, most: float = math.inf) -> tuple[list[tuple[str, str]], int]:
    """The ``key: number`` pairs of a dictionary's text, left to right (a key is a run of letters,
    spaces, ``_``, ``/`` and ``-`` starting with a letter, quoted or not, then ``:`` or ``=``), and
    how many values were read; no more than ``most`` are (``most + 1`` is said where the text
    holds more)."""
    out, start, previous, values = [], 0, 0, 0
    end = len(body) if len(body) < _SHORT_BODY else _values_end(body)
    for match in _VALUE.finditer(body, 0, end):
        values += 1
        if values > most:
            break
        at = match.start()
        # a key holds no separator, so it starts after the previous one: reading back no further
        # keeps the whole scan linear
        key = _key_before(body[max(start, previous):at])
        previous = at + 1
        if key:
            out.append((key, match.group(3)))
            start = match.end()
    return out, values


def _values_end(body: str) -> int:
    """Where a dictionary's last value can end: a little past its last digit or ``n`` (every
    number holds a digit, ``nan``, ``inf`` or ``infinity``; the rest of ``infinity%`` and the
    boundary after it fit in the margin). No separator after it can have a value, so none is
    looked at: 100 kB of ``-=`` had taken 25 ms."""
    if body.isascii():  # a search per character from the end, each a fast scan in C
        last = max(map(body.rfind, "0123456789nN"))
    else:
        found = _LAST_DIGIT_OR_N(body[::-1])
        last = -1 if found is None else len(body) - 1 - found.start()
    return 0 if last < 0 else min(len(body), last + 8)


_SHORT_BODY = 256  # characters of a dictionary scanned whole, not worth looking for its end
_LAST_DIGIT_OR_N = re.compile(r"[\dn]", re.I).search  # any script's digits; n and N (re.I's)


def _key_before(text: str) -> str:
    """The key that ``text`` ends with (before optional space, a quote and space); "" when there
    is none."""
    text = text.rstrip()
    if text[-1:] in ("'", '"'):
        text = text[:-1].rstrip()
    last = text[-1:]
    if not (last.isalpha() or last in _KEY_SYMBOLS):  # a digit, a comma...: no key ends here
        return ""
    stop = max(0, len(text) - 1 - _SHORT_RUN)
    first = _run_start(text, len(text) - 1, stop)
    if first == stop > 0:  # a long run: the rest of it is read below
        first = _long_run_start(text, first)
    return text[first:].lstrip(_KEY_SYMBOL_CHARS)  # the run's letters and key symbols, from a
    # letter (stepping over 100 kB of spaces one at a time had taken 13 ms)


_SHORT_RUN = 32  # characters of a key's run read one by one before the regex engine reads on


def _long_run_start(text: str, end: int) -> int:
    """Where the run of letters and key symbols that ends at ``end`` starts: in ASCII, where the
    text before it stripped of them ends; else found by the regex engine on the text before it
    reversed (100 kB of spaces before a key took 10 ms a character at a time; 100 kB of " _" took
    the engine 11 ms, the strip 0.1). The engine's letters hold a few numerals beside (such as
    "৴"): a run with one is read character by character."""
    head = text[:end]
    if head.isascii():  # the run's characters are few enough to list: stripped in C
        return len(head.rstrip(_ASCII_RUN))
    reversed_run = _KEY_RUN_REVERSED(head[::-1])  # it matches, if only nothing
    first = end - (reversed_run.end() if reversed_run else 0)
    letters = head[first:].translate(_NO_KEY_SYMBOLS)
    if letters and not letters.isalpha():
        first = _run_start(text, end, 0)
    return first


def _run_start(text: str, first: int, stop: int) -> int:
    """Where the run of letters and key symbols before ``first`` starts, reading back one
    character at a time no further than ``stop``."""
    while first > stop and (text[first - 1].isalpha() or text[first - 1] in _KEY_SYMBOLS):
        first -= 1
    return first
