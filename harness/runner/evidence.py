"""Per-item evidence: what a researcher needs to look at one item of a cell.

For each item: its id, transcript and clip, the annotators' votes and distribution, its entropy
and ambiguity level, every candidate (its text, α, token count, parsing rule and distribution, the
verifier's reply and score, the weight it got, whether it was chosen; for ``readout``, each label's
log-probability), the final distribution, the
per-item metrics, notes and errors. The prompt templates the cell rendered are kept once, in the
header. The record module writes it as JSON Lines beside the cell's record; the runner spools it
chunk by chunk as the items come (:mod:`harness.runner.outcomes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.data import Dataset, Item
from harness.prompts import verifier_prompt
from harness.strategies import ItemResult, Strategy

CANDIDATE_FIELDS = ("text", "logprob", "n_tokens", "rule", "valid", "reason", "probs",
                    "verifier_reply", "verifier_score", "weight", "chosen", "label_logprobs")


def _candidate(candidate: dict[str, Any]) -> dict[str, Any]:
    """A candidate's fields as the evidence keeps them (a non-finite number, a missing α, is
    written as null: :func:`harness.record.json_line.json_line`)."""
    return {key: candidate[key] for key in CANDIDATE_FIELDS if key in candidate}


def prompt_templates(strategy: Strategy, dataset: Dataset, prompts: str) -> dict[str, str]:
    """The strategy's prompt (and the verifier's, where it has one) with ``{transcript}`` and
    ``{candidate}`` where each item's own text goes."""
    out = {"prompt": strategy.prompt(dataset.name, "{transcript}", dataset.labels, prompts)}
    if strategy.needs_verifier:
        out["verifier"] = verifier_prompt(dataset.name, "{transcript}", dataset.labels, "{candidate}",
                                          prompts)
    return out


def evidence_header(strategy: Strategy, dataset: Dataset, prompts: str | None) -> dict[str, Any]:
    """The evidence file's header: the labels and the prompt templates (``prompts``: the prompt
    set, None for a chance baseline, which reads no prompt)."""
    templates = {} if prompts is None else prompt_templates(strategy, dataset, prompts)
    return {"labels": list(dataset.labels), "prompt_templates": templates}


def item_evidence(items: Sequence[Item], results: Sequence[ItemResult], level: np.ndarray
                  ) -> list[dict[str, Any]]:
    """One dict per item, in order (``level``: each item's ambiguity level, 0-based), all but
    its per-item scores, which are known once the whole cell is (they are added last); its
    distributions are numpy arrays, which :func:`~harness.record.json_line.json_line` writes."""
    out = []
    for i, (item, result) in enumerate(zip(items, results)):
        out.append({
            "id": item.id, "transcript": item.transcript, "audio": str(item.audio_path),
            "votes": np.asarray(item.votes, dtype=float),
            "human": np.asarray(item.soft, dtype=float),
            "entropy": float(item.entropy), "level": int(level[i]),
            "probs": None if result.probs is None else np.asarray(result.probs, dtype=float),
            "rule": result.rule, "reason": result.reason, "error": result.error,
            "notes": list(result.notes),
            "candidates": [_candidate(c) for c in result.candidates],
        })
    return out
