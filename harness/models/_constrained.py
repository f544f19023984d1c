"""Constrained decoding: only tokens that keep the answer a prefix of the JSON template.

The language is ``{"L1": N, "L2": N, ..., "LK": N}`` with N = ``[01](\\.[0-9]{1,2})?``, then EOS.
Every answer therefore parses by rule 1 (an all-zero answer still parses, and is then reported
invalid by the parser's value checks, never altered). The automaton's states and each state's
allowed tokens are computed once per label set and tokenizer; at decode time a step costs one
table lookup per sequence, so it works under beam search (each beam carries its own state).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

DIGITS = "0123456789"


class JsonConstraint:
    """Allowed-token masks for the JSON answer template over ``labels``."""

    def __init__(self, labels: Sequence[str], token_strings: Sequence[str], vocab_size: int,
                 eos_ids: Sequence[int]) -> None:
        self.literals = [f'{{"{labels[0]}": '] + [f', "{lab}": ' for lab in labels[1:]] + ["}"]
        alphabet = set("".join(self.literals)) | set(DIGITS) | {"."}
        self._tokens = [(i, s) for i, s in enumerate(token_strings) if s and set(s) <= alphabet]
        self.eos_ids = list(eos_ids)
        self.vocab_size = vocab_size
        self._index: dict[tuple, int] = {}
        self._next: list[dict[int, int]] = []
        masks: list[np.ndarray] = []
        self._explore(masks)
        self.masks = np.stack(masks)

    # --- the character automaton ------------------------------------------------------

    def _feed(self, state: tuple, ch: str) -> tuple | None:
        kind, seg, pos = state
        if kind == "lit":
            literal = self.literals[seg]
            if ch != literal[pos]:
                return None
            if pos + 1 < len(literal):
                return ("lit", seg, pos + 1)
            return ("done", seg, 0) if seg == len(self.literals) - 1 else ("num", seg, 0)
        if kind == "num":
            step = {0: "01", 1: ".", 2: DIGITS, 3: DIGITS}.get(pos, "")
            if ch in step:
                return ("num", seg, pos + 1)
            if pos in (1, 3, 4):  # the number may end here: the next literal must follow
                return self._feed(("lit", seg + 1, 0), ch)
        return None

    def _run(self, state: tuple, text: str) -> tuple | None:
        for ch in text:
            following = self._feed(state, ch)
            if following is None:
                return None
            state = following
        return state

    def _explore(self, masks: list[np.ndarray]) -> None:
        start = ("lit", 0, 0)
        self._index[start] = 0
        queue = deque([start])
        while queue:
            state = queue.popleft()
            mask = np.zeros(self.vocab_size, dtype=bool)
            moves: dict[int, int] = {}
            if state[0] == "done":
                mask[[e for e in self.eos_ids if e < self.vocab_size]] = True
            else:
                for token, text in self._tokens:
                    after = self._run(state, text)
                    if after is None or token >= self.vocab_size:
                        continue
                    if after not in self._index:
                        self._index[after] = len(self._index)
                        queue.append(after)
                    mask[token] = True
                    moves[token] = self._index[after]
            masks.append(mask)
            self._next.append(moves)

    # --- decode-time API --------------------------------------------------------------

    def initial(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)

    def advance(self, states: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Next state per sequence; a token outside the automaton (EOS, padding) keeps it."""
        return np.array([self._next[s].get(int(t), s) for s, t in zip(states, tokens)],
                        dtype=np.int64)

    def is_complete(self, state: int) -> bool:
        return not self._next[state] and bool(self.masks[state].any())


def token_strings(tokenizer) -> list[str]:
    """Each vocabulary id decoded alone (special tokens give ``""``: never allowed)."""
    special = set(tokenizer.all_special_ids)
    return ["" if i in special else tokenizer.decode([i]) for i in range(len(tokenizer))]
