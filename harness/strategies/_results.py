"""What a strategy produces for one item, and the per-candidate records it is built from."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.models.api import Generation
from harness.parsing import parse_verdict


@dataclass
class ItemResult:
    """What one strategy produced for one item.

    Attributes:
        probs: The predicted distribution, or None when the item is invalid.
        rule: The parsing rule that decided the chosen candidate (``"readout"``, ``"chance"``).
        reason: Why the item is invalid, in a few words.
        candidates: One dict per candidate: text, α, rule, validity, distribution, verifier score.
        error: What failed (the clip, the model call), or None.
        usage: API tokens and estimated cost, verifier included.
        notes: What the harness changed on the way (resampling, down-mixing, truncation).
        alpha_mixtures: W-BoN's mixture under each choice of α (``ALPHAS`` order), computed
            with its prediction (which is its row for the configured α, bit for bit), for the
            cell's α comparison; None elsewhere, and where some choice weighs no beam.
        alpha_weight_max: Each of those mixtures' largest weight (1 where one beam took all).
        tie_picks: ALM-v's prediction under each tie rule (``VERIFIER_TIES`` order), for the
            cell's comparison of the two; None elsewhere (another strategy, an invalid item).
    """

    item_id: str
    probs: np.ndarray | None = None
    rule: str | None = None
    reason: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    error: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    alpha_mixtures: np.ndarray | None = None
    alpha_weight_max: np.ndarray | None = None
    tie_picks: np.ndarray | None = None

    @property
    def valid(self) -> bool:
        return self.probs is not None


def parsed_candidates(generation: Generation, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Each candidate's text, α and token count with its parse (a candidate met with non-finite
    logits is invalid whatever it says)."""
    out = []
    for c in generation.candidates:
        parsed = parse_verdict(c.text, labels)
        valid = parsed.probs is not None and c.finite
        out.append({"text": c.text, "logprob": c.logprob, "has_logprob": not math.isnan(c.logprob),
                    "n_tokens": c.n_tokens,
                    "rule": parsed.rule, "valid": valid,
                    "probs": parsed.probs if valid else None,
                    "reason": parsed.reason if c.finite else "non-finite logits"})
    return out


VERIFIER_REPLIES = "verifier_replies"  # a usage key: the verifier's reply to each candidate


def add_usage(*usages: dict[str, Any]) -> dict[str, Any]:
    """Sum token counts and costs (a cost stays None if any part has no known price); lists
    (the verifier's replies) are joined."""
    out: dict[str, Any] = {}
    for usage in usages:
        for key, value in (usage or {}).items():
            if isinstance(value, list):
                out[key] = out.get(key, []) + value
            elif key == "cost_usd":
                out[key] = None if value is None or out.get(key, 0.0) is None else (
                    out.get(key, 0.0) + value)
            else:
                out[key] = out.get(key, 0) + value
    return out


def rule_counts(results: Sequence[ItemResult]) -> Counter[str | None]:
    """How many items each parsing rule decided (``None`` for no rule), for the report."""
    return Counter(r.rule for r in results if r.error is None)
