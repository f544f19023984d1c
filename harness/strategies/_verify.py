"""The verifier's pass: an ALM scores each candidate 0-1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.cache import GenerationCache, cached_generate
from harness.models.api import Decoding, Generation, ModelAPI, Request
from harness.parsing import parse_score
from harness.prompts import verifier_prompts
from harness.strategies._config import StrategyConfig
from harness.strategies._results import VERIFIER_REPLIES, add_usage

if TYPE_CHECKING:
    from harness.data import Dataset


def verify(verifier: ModelAPI | None, requests: Sequence[Request], generations: Sequence[Generation],
           dataset: Dataset, config: StrategyConfig, cache: GenerationCache | None
           ) -> list[tuple[list[float | None] | None, dict[str, Any]]]:
    """The verifier's score of every candidate (None where its reply has no score), and what the
    verifier's calls cost, per item; the usage carries the replies themselves (cut at 2,000
    characters) under :data:`VERIFIER_REPLIES`, which the strategy moves onto the candidates."""
    if verifier is None:
        raise ValueError("verify needs a verifier model")
    flat: list[Request] = []
    owners: list[int] = []
    for i, (r, g) in enumerate(zip(requests, generations)):
        item = dataset.item_by_id(r.item_id)  # not a map of the whole corpus per chunk
        texts = verifier_prompts(dataset.name, item.transcript, dataset.labels,
                                 [c.text for c in g.candidates], config.prompts)
        flat.extend(r.with_prompt(text) for text in texts)
        owners.extend([i] * len(texts))
    decoding = Decoding(max_new_tokens=8, seed=config.seed)
    replies = cached_generate(verifier, flat, decoding, cache) if flat else []
    scores: list[list[float | None]] = [[] for _ in requests]
    usages: list[list[dict[str, Any]]] = [[] for _ in requests]
    said: list[list[str]] = [[] for _ in requests]
    for owner, reply in zip(owners, replies):
        text = reply.candidates[0].text if reply.candidates else ""
        scores[owner].append(parse_score(text))
        said[owner].append(text[:2000] if reply.candidates else f"(no reply: {reply.error})")
        usages[owner].append(reply.usage)
    # each item's usage summed once (summing reply by reply rebuilt it for each candidate)
    return [(s, add_usage(*u, {VERIFIER_REPLIES: r})) for s, u, r in zip(scores, usages, said)]
