"""Test-time scaling strategies built on ModelAPI calls (DESIGN.md §7).

``base``/``cot``: greedy answer to the base/CoT prompt. ``bon``/``w-bon``: B=5 beams, the best
raw cumulative log-likelihood or their Dirichlet mixture. ``alm-v``/``w-alm-v``: B=3 beams scored
by a verifier ALM, the best or the mixture weighted by the scores. Beyond the reference set:
``readout`` (softmax over each label's summed token log-probabilities, one forward pass) and
``sample-n`` (N temperature samples averaged, the compute-matched control for ``w-bon``).

Candidates that do not parse drop out before selection or weighting; an item with no valid
candidate is invalid, never filled in. One clip that cannot be read costs that item only.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from harness.aggregate import dirichlet_mixture
from harness.cache import GenerationCache, cached_generate, cached_label_logprobs
from harness.data import DataError, Dataset
from harness.models.api import Decoding, ItemFailure, Request
from harness.parsing import parse_distribution, parse_score
from harness.prompts import base_prompt, cot_prompt, readout_prompt, verifier_prompt

STRATEGIES = ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n")


class StrategyUnsupported(RuntimeError):
    """The model lacks a capability the strategy needs; the cell skips with this reason."""


@dataclass(frozen=True)
class StrategyConfig:
    """Knobs of the strategies; the defaults are the reference setup's."""

    beams: int = 5
    verifier_beams: int = 3
    tau: float = 1.0
    verifier_weighting: str = "softmax"
    samples: int = 5
    temperature: float = 0.7
    max_new_tokens: int = 96
    cot_max_new_tokens: int = 384
    constrained: bool = False
    seed: int = 0


@dataclass
class ItemResult:
    """What one strategy produced for one item."""

    item_id: str
    probs: np.ndarray | None = None
    rule: str | None = None
    reason: str = ""
    candidates: list[dict] = field(default_factory=list)
    tokens: int = 0
    error: str | None = None
    usage: dict = field(default_factory=dict)  # API tokens and estimated cost, verifier included
    notes: list[str] = field(default_factory=list)  # resampling, down-mixing, truncation

    @property
    def valid(self) -> bool:
        return self.probs is not None


def decoding_for(strategy: str, config: StrategyConfig, labels: Sequence[str] = ()) -> Decoding:
    """The generation run a strategy needs (shared by bon/w-bon and by alm-v/w-alm-v).

    With ``config.constrained`` every answer follows the JSON template over ``labels`` (not for
    ``cot``, whose reasoning is free text).
    """
    common = {"seed": config.seed, "constrained": config.constrained,
              "json_labels": tuple(labels) if config.constrained else (),
              "max_new_tokens": config.max_new_tokens}
    if strategy in ("base", "readout"):
        return Decoding(**common)
    if strategy == "cot":
        return Decoding(**dict(common, max_new_tokens=config.cot_max_new_tokens, constrained=False,
                               json_labels=()))
    if strategy in ("bon", "w-bon"):
        return Decoding(mode="beam", num_candidates=config.beams, **common)
    if strategy in ("alm-v", "w-alm-v"):
        return Decoding(mode="beam", num_candidates=config.verifier_beams, **common)
    if strategy == "sample-n":
        return Decoding(mode="sample", num_candidates=config.samples,
                        temperature=config.temperature, **common)
    raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")


def check_supported(strategy: str, model, verifier=None) -> None:
    """Raise StrategyUnsupported naming the missing capability (never a silent fallback)."""
    caps = model.info.capabilities
    needs = {"bon": ("beam_search", "logprobs"), "w-bon": ("beam_search", "logprobs"),
             "alm-v": ("beam_search",), "w-alm-v": ("beam_search",),
             "readout": ("label_logprobs",), "sample-n": ("n_candidates",)}.get(strategy, ())
    missing = [n for n in needs if not getattr(caps, n)]
    if missing:
        raise StrategyUnsupported(f"{model.info.name} has no {', '.join(missing)}: "
                                  f"{strategy} cannot run on it")
    if strategy in ("alm-v", "w-alm-v") and verifier is None:
        raise StrategyUnsupported(f"{strategy} needs a verifier model")


def load_requests(dataset: Dataset, prompt_for: Callable, results: dict[str, ItemResult],
                  notes: dict[str, list[str]]) -> list[tuple[int, Request]]:
    """Requests for the items whose audio loads; the others get an error result.

    What loading had to change (resampling, down-mixing) goes into ``notes`` per item.
    """
    out = []
    for index, item in enumerate(dataset):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                audio = item.load_audio()
            except DataError as exc:
                results[item.id] = ItemResult(item.id, error=str(exc), reason="audio error")
                continue
        notes[item.id] = [str(w.message) for w in caught]
        out.append((index, Request(audio, prompt_for(item), item.id)))
    return out


def run_strategy(strategy: str, model, dataset: Dataset, *, config: StrategyConfig | None = None,
                 cache: GenerationCache | None = None, verifier=None,
                 progress: Callable[[int], None] | None = None) -> list[ItemResult]:
    """Run ``strategy`` over every item of ``dataset``; results come back in item order.

    ``progress(items generated)`` is called as the generation advances.
    """
    config = config or StrategyConfig()
    check_supported(strategy, model, verifier)
    labels, corpus = dataset.labels, dataset.name
    prompt = {"cot": cot_prompt, "readout": readout_prompt}.get(strategy, base_prompt)
    results: dict[str, ItemResult] = {}
    notes: dict[str, list[str]] = {}
    requests = load_requests(dataset, lambda it: prompt(corpus, it.transcript, labels), results,
                             notes)
    reqs = [r for _, r in requests]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run_model(strategy, model, reqs, dataset, config, cache, verifier, progress, results)
    claimed = set()
    for r in reqs:  # e.g. the backend's truncation of an over-long clip, which names the item
        mine = [w for w in caught if f"{r.item_id}:" in str(w.message)]
        claimed.update(id(w) for w in mine)
        results[r.item_id].notes = notes[r.item_id] + [str(w.message) for w in mine]
    for w in caught:  # the rest (e.g. a halved batch) is not about one item: pass it on
        if id(w) not in claimed:
            warnings.warn(w.message, w.category, stacklevel=2)
    return [results[item.id] for item in dataset]


def _run_model(strategy, model, reqs, dataset, config, cache, verifier, progress, results) -> None:
    labels = dataset.labels
    if strategy == "readout":
        results.update(_readout_results(model, reqs, labels, cache))
    else:
        decoding = decoding_for(strategy, config, labels)
        if decoding.constrained and not model.info.capabilities.structured_output:
            raise StrategyUnsupported(f"{model.info.name} has no structured output: "
                                      "constrained decoding cannot run on it")
        generations = cached_generate(model, reqs, decoding, cache, progress=progress)
        scored = _verify(verifier, reqs, generations, dataset, config, cache) if strategy in (
            "alm-v", "w-alm-v") else [(None, {})] * len(reqs)
        for r, gen, (vs, v_usage) in zip(reqs, generations, scored):
            results[r.item_id] = _combine(strategy, r.item_id, gen, labels, config, vs)
            results[r.item_id].usage = add_usage(gen.usage, v_usage)


def _parsed_candidates(generation, labels) -> list[dict]:
    out = []
    for c in generation.candidates:
        parsed = parse_distribution(c.text, labels)
        valid = parsed.valid and c.finite
        out.append({"text": c.text, "logprob": c.logprob, "n_tokens": c.n_tokens,
                    "rule": parsed.rule, "valid": valid,
                    "probs": parsed.probs.tolist() if valid else None,
                    "reason": parsed.reason if c.finite else "non-finite logits"})
    return out


def _combine(strategy: str, item_id: str, generation, labels, config: StrategyConfig,
             verifier_scores: list | None) -> ItemResult:
    if generation.error is not None:
        return ItemResult(item_id, error=generation.error, reason="generation failed")
    cands = _parsed_candidates(generation, labels)
    for cand, score in zip(cands, verifier_scores or []):
        cand["verifier_score"] = score
    result = ItemResult(item_id, candidates=cands, tokens=sum(c["n_tokens"] for c in cands))
    usable = [c for c in cands if c["valid"]]
    if strategy in ("alm-v", "w-alm-v"):
        usable = [c for c in usable if c.get("verifier_score") is not None]
    if not usable:
        first = cands[0] if cands else {}
        result.rule, result.reason = first.get("rule"), first.get("reason") or "no candidate"
        if len(cands) > 1:
            result.reason = "no valid candidate"
        return result
    dists = np.array([c["probs"] for c in usable])
    if strategy in ("base", "cot"):
        chosen = usable[0]
        result.probs = dists[0]
    elif strategy in ("bon", "alm-v"):
        key = "logprob" if strategy == "bon" else "verifier_score"
        best = int(np.argmax([c[key] for c in usable]))
        chosen, result.probs = usable[best], dists[best]
    elif strategy == "w-bon":
        chosen = usable[0]
        result.probs = dirichlet_mixture(dists, [c["logprob"] for c in usable], tau=config.tau)
    elif strategy == "w-alm-v":
        chosen = usable[0]
        result.probs = dirichlet_mixture(dists, [c["verifier_score"] for c in usable],
                                         tau=config.tau, weighting=config.verifier_weighting)
    else:  # sample-n: self-consistency, every valid sample counts the same
        chosen = usable[0]
        result.probs = dists.mean(axis=0)
    result.rule = chosen["rule"]
    return result


def add_usage(*usages: dict) -> dict:
    """Sum token counts and costs (a cost stays None if any part has no known price)."""
    out: dict = {}
    for usage in usages:
        for key, value in (usage or {}).items():
            if key == "cost_usd":
                out[key] = None if value is None or out.get(key, 0.0) is None else (
                    out.get(key, 0.0) + value)
            else:
                out[key] = out.get(key, 0) + value
    return out


def _verify(verifier, requests: Sequence[Request], generations, dataset: Dataset,
            config: StrategyConfig, cache) -> list[tuple[list, dict]]:
    """The verifier's 0–1 score of every candidate (None where its reply has no score), and
    what the verifier's calls cost, per item."""
    by_id = {item.id: item for item in dataset}
    flat, owners = [], []
    for i, (r, g) in enumerate(zip(requests, generations)):
        item = by_id[r.item_id]
        for c in g.candidates:
            text = verifier_prompt(dataset.name, item.transcript, dataset.labels, c.text)
            flat.append(replace(r, prompt=text))
            owners.append(i)
    decoding = Decoding(max_new_tokens=8, seed=config.seed)
    replies = cached_generate(verifier, flat, decoding, cache) if flat else []
    scores: list[list] = [[] for _ in requests]
    usage: list[dict] = [{} for _ in requests]
    for owner, reply in zip(owners, replies):
        text = reply.candidates[0].text if reply.candidates else ""
        scores[owner].append(parse_score(text))
        usage[owner] = add_usage(usage[owner], reply.usage)
    return list(zip(scores, usage))


def _readout_results(model, reqs: Sequence[Request], labels, cache) -> dict[str, ItemResult]:
    """Readout results by item; an item the model could not score carries the reason its
    :class:`~harness.models.ItemFailure` warning gave (other warnings pass on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cached_label_logprobs(model, reqs, labels, cache)
    failures = {}
    for w in caught:
        if isinstance(w.message, ItemFailure):
            failures[w.message.item] = w.message.reason
        else:
            warnings.warn(w.message, w.category, stacklevel=2)
    return {r.item_id: _readout_result(r.item_id, row, failures.get(r.item_id))
            for r, row in zip(reqs, scores)}


def _readout_result(item_id: str, row: np.ndarray, failure: str | None = None) -> ItemResult:
    if not np.isfinite(row).all():
        return ItemResult(item_id, error=failure or "non-finite label scores",
                          reason="label scoring failed")
    weights = np.exp(row - row.max())
    return ItemResult(item_id, probs=weights / weights.sum(), rule="readout")


def rule_counts(results: Sequence[ItemResult]) -> Counter:
    """How many items each parsing rule decided (``None`` for no rule), for the report."""
    return Counter(r.rule for r in results if r.error is None)
