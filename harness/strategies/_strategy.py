"""What a strategy is, and the registry the grid and the runner read strategy names from.

A strategy declares its prompt, its decoding, the capabilities it needs of the model (and whether
it needs a verifier), and how it combines an item's valid candidates into one distribution. The
generation path (cache, verifier, parse, combine) is shared; a strategy that reads the model
another way (the label readout) overrides :meth:`Strategy.results`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from harness.cache import GenerationCache, cached_generate, generation_keys
from harness.models.api import Decoding, Generation, ModelAPI, Request
from harness.prompts import base_prompt
from harness.strategies._config import StrategyConfig
from harness.strategies._results import VERIFIER_REPLIES, ItemResult, add_usage, parsed_candidates

if TYPE_CHECKING:
    from harness.data import Dataset


class StrategyUnsupported(RuntimeError):
    """The model lacks a capability the strategy needs; the cell skips with this reason."""


@dataclass(frozen=True)
class RunContext:
    """What a strategy's run is given besides the model and the requests."""

    dataset: Dataset
    config: StrategyConfig
    cache: GenerationCache | None = None
    verifier: ModelAPI | None = None
    progress: Callable[[int], None] | None = None


Scores = tuple[list[float | None] | None, dict[str, Any]]  # verifier scores and their usage


class Strategy:
    """One test-time strategy. Subclass, set the class attributes, override what differs.

    Attributes:
        name: The id in cell names and tables.
        needs: :class:`~harness.models.Capabilities` fields the model must have.
        needs_verifier: Whether a verifier model scores the candidates.
        reference: Part of the paper's reference set (the grid's default strategies).
        chance_cell: The chance baselines' cells are filed under this strategy (one of them).
        picks_one: Whether an item's prediction is one candidate's distribution, the one
            :meth:`combine` returns, which the evidence marks ``chosen``; False for a strategy
            that mixes its candidates (``w-bon``, ``w-alm-v``, ``sample-n``): it marks none,
            and each candidate's ``weight``, where it weighs them, says what it counted.
    """

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    needs_verifier: ClassVar[bool] = False
    reference: ClassVar[bool] = False
    chance_cell: ClassVar[bool] = False
    picks_one: ClassVar[bool] = True

    def prompt(self, corpus: str, transcript: str, labels: Sequence[str],
               prompts: str = "paper") -> str:
        """The prompt the model reads for one item, in the prompt set ``prompts``."""
        return base_prompt(corpus, transcript, labels, prompts=prompts)

    def decoding(self, config: StrategyConfig, labels: Sequence[str]) -> Decoding:
        """The generation run (one greedy answer unless overridden). With ``config.constrained``
        every answer follows the JSON template over ``labels``."""
        return Decoding(**common_decoding(config, labels))

    def combine(self, usable: list[dict[str, Any]], config: StrategyConfig
                ) -> tuple[np.ndarray, dict[str, Any]]:
        """The item's distribution from its valid candidates (at least one), and the candidate
        whose parse rule the item reports (the one picked, where :attr:`picks_one`)."""
        return np.array([c["probs"] for c in usable])[0], usable[0]

    def usable(self, candidates: list[dict[str, Any]], config: StrategyConfig
               ) -> list[dict[str, Any]]:
        """The candidates that take part in :meth:`combine`."""
        return [c for c in candidates if c["valid"]]

    def none_usable(self, candidates: list[dict[str, Any]]) -> str:
        """Why valid candidates were still not usable (the item's reason)."""
        return "no usable candidate"

    def results(self, model: ModelAPI, requests: Sequence[Request], context: RunContext
                ) -> list[ItemResult]:
        """One result per request, in order: generate through the cache, score, combine."""
        labels = context.dataset.labels
        decoding = self.decoding(context.config, labels)
        if decoding.constrained and not model.info.capabilities.structured_output:
            raise StrategyUnsupported(f"{model.info.name} has no structured output: "
                                      "constrained decoding cannot run on it")
        generations = cached_generate(model, requests, decoding, context.cache,
                                      progress=context.progress)
        scored = self.score(requests, generations, context)
        out = []
        for r, gen, (scores, usage) in zip(requests, generations, scored):
            try:
                result = self.result(r.item_id, gen, labels, context.config, scores)
            except (ValueError, ArithmeticError) as exc:  # one item's candidates, not the run
                result = ItemResult(r.item_id, error=f"combining the candidates failed: {exc}",
                                    reason="combining failed")
            result.usage = add_usage(gen.usage, usage)
            for cand, reply in zip(result.candidates, result.usage.pop(VERIFIER_REPLIES, [])):
                cand["verifier_reply"] = reply
            result.notes = list(gen.notes) + result.notes
            if gen.error is None and len(gen.candidates) < decoding.num_candidates:
                # a server that gives fewer (n ignored): sample-n's mean of one is not of five
                result.notes.append(f"the model gave {len(gen.candidates)} of the "
                                    f"{decoding.num_candidates} candidates asked for")
            out.append(result)
        return out

    def first_keys(self, model: ModelAPI, requests: Sequence[Request], context: RunContext
                   ) -> list[str]:
        """The cache key of the first model call each request needs (its generation): the
        runner reads a clip's samples only when that key is not cached."""
        decoding = self.decoding(context.config, context.dataset.labels)
        return generation_keys(model.info, requests, decoding)

    def score(self, requests: Sequence[Request], generations: Sequence[Generation],
              context: RunContext) -> list[Scores]:
        """Per item, a score for each candidate and what scoring cost (none by default)."""
        return [(None, {})] * len(requests)

    def result(self, item_id: str, generation: Generation, labels: Sequence[str],
               config: StrategyConfig, scores: list[float | None] | None) -> ItemResult:
        """One item's result from its candidates (and their scores, where a verifier gave them)."""
        if generation.error is not None:
            return ItemResult(item_id, error=generation.error, reason="generation failed")
        cands = parsed_candidates(generation, labels)
        self._note_cut_short(cands, config, labels)
        for cand, score in zip(cands, scores or []):
            cand["verifier_score"] = score
        result = ItemResult(item_id, candidates=cands, tokens=sum(c["n_tokens"] for c in cands))
        usable = self.usable(cands, config)
        if not usable:
            first = cands[0] if cands else {}
            result.rule, result.reason = first.get("rule"), first.get("reason") or "no candidate"
            if len(cands) > 1:
                result.reason = "no valid candidate"
            if any(c["valid"] for c in cands):
                result.reason = self.none_usable(cands)
            return result
        result.probs, chosen = self.combine(usable, config)
        result.rule = chosen["rule"]
        if self.picks_one:  # a mixture's first candidate names its rule, and was not chosen
            chosen["chosen"] = True
        return result


    def _note_cut_short(self, cands: list[dict[str, Any]], config: StrategyConfig,
                        labels: Sequence[str]) -> None:
        """An invalid candidate that used the whole answer budget was most likely cut short
        (a chain of thought longer than ``cot_max_new_tokens``): its reason says so."""
        if all(c["valid"] for c in cands):
            return
        limit = self.decoding(config, labels).max_new_tokens
        for c in cands:
            if not c["valid"] and c["n_tokens"] >= limit:
                c["reason"] = f"{c['reason']}; it used all {limit} new tokens: cut short?"


def common_decoding(config: StrategyConfig, labels: Sequence[str]) -> dict[str, Any]:
    """The decoding fields every strategy shares (seed, answer budget, the JSON template)."""
    return {"seed": config.seed, "constrained": config.constrained,
            "json_labels": tuple(labels) if config.constrained else (),
            "max_new_tokens": config.max_new_tokens}


_REGISTRY: dict[str, Strategy] = {}
S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Class decorator: make the strategy runnable by its ``name`` (in the grid too).

    Raises:
        ValueError: another strategy already has that name.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute 'name'")
    if name in _REGISTRY and type(_REGISTRY[name]) is not cls:
        raise ValueError(f"a strategy named {name!r} is registered already "
                         f"({type(_REGISTRY[name]).__qualname__})")
    _REGISTRY[name] = cls()
    return cls


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``.

    Raises:
        ValueError: no strategy has that name (the message lists those that do).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; choose from {strategy_names()}")
    return _REGISTRY[name]


def strategy_names(*, reference: bool = False, needs_verifier: bool | None = None,
                   chance_cell: bool | None = None) -> tuple[str, ...]:
    """Registered strategy names in registration order, optionally only the reference set, or
    only those that do (not) need a verifier, or the chance baselines' cell."""
    return tuple(name for name, s in _REGISTRY.items()
                 if (not reference or s.reference)
                 and (needs_verifier is None or s.needs_verifier == needs_verifier)
                 and (chance_cell is None or s.chance_cell == chance_cell))
