"""The built-in strategies: the paper's six and two controls.

``base``/``cot``: a greedy answer to the base/CoT prompt. ``bon``/``w-bon``: B=5 beams, the best
raw cumulative log-likelihood α or their Dirichlet mixture. ``alm-v``/``w-alm-v``: B=3 beams scored
by a verifier ALM, the best or the mixture weighted by the scores. Beyond the reference set:
``readout`` (softmax over each label's summed token log-probabilities, one forward pass) and
``sample-n`` (N temperature samples averaged, the compute-matched control for ``w-bon``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.aggregate import candidate_means, candidate_weights, mixture_mean, weighted_mixtures
from harness.cache import cached_label_logprobs, labels_keys
from harness.models.api import Decoding, Generation, LabelScores, ModelAPI, Request
from harness.prompts import cot_prompt, readout_prompt
from harness.strategies._config import ALPHAS, VERIFIER_TIES, StrategyConfig
from harness.strategies._results import ItemResult
from harness.strategies._strategy import RunContext, Scores, Strategy, common_decoding, register
from harness.strategies._verify import verify


def best_by(key: str, usable: list[dict[str, Any]]) -> tuple[np.ndarray, dict[str, Any]]:
    """The candidate with the highest ``key`` (``logprob``, ``verifier_score``): its distribution
    and itself."""
    best = max(range(len(usable)), key=lambda i: usable[i][key])  # the first of equals, as argmax
    return np.array(usable[best]["probs"]), usable[best]


def mixture_by(key: str, usable: list[dict[str, Any]], tau: float, weighting: str = "softmax"
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """The Dirichlet mixture of the candidates weighted by ``key`` (Eq. 2-3); the first candidate
    names the rule. Each candidate's weight is kept on it (``weight``)."""
    means = candidate_means([c["probs"] for c in usable], tau)
    weights = candidate_weights([c[key] for c in usable], weighting)
    for cand, weight in zip(usable, weights.tolist()):
        cand["weight"] = weight
    return mixture_mean(means, weights), usable[0]


def alpha_of(candidate: dict[str, Any], alpha: str) -> float:
    """What W-BoN weighs a beam by (:attr:`StrategyConfig.alpha`)."""
    if alpha == "mean":
        return candidate["logprob"] / max(1, candidate["n_tokens"])
    return 0.0 if alpha == "uniform" else candidate["logprob"]


@register
class Base(Strategy):
    """One greedy answer to the base prompt."""

    name = "base"
    reference = True
    chance_cell = True


@register
class ChainOfThought(Strategy):
    """One greedy answer to the chain-of-thought prompt (free reasoning, so never constrained)."""

    name = "cot"
    reference = True

    def prompt(self, corpus: str, transcript: str, labels: Sequence[str],
               prompts: str = "paper") -> str:
        return cot_prompt(corpus, transcript, labels, prompts)

    def decoding(self, config: StrategyConfig, labels: Sequence[str]) -> Decoding:
        return Decoding(**dict(common_decoding(config, labels), max_new_tokens=config.cot_max_new_tokens,
                               constrained=False, json_labels=()))


class _Beams(Strategy):
    """B beams weighed by their α: a candidate the model returned no α for takes no part."""

    needs = ("beam_search", "logprobs")

    def decoding(self, config: StrategyConfig, labels: Sequence[str]) -> Decoding:
        return Decoding(mode="beam", num_candidates=config.beams, **common_decoding(config, labels))

    def usable(self, candidates: list[dict[str, Any]], config: StrategyConfig
               ) -> list[dict[str, Any]]:
        return [c for c in candidates if c["valid"] and c["has_logprob"]]

    def none_usable(self, candidates: list[dict[str, Any]]) -> str:
        return "the model returned no log-likelihood (alpha) for its valid candidates"


@register
class BestOfN(_Beams):
    """The valid beam with the highest α."""

    name = "bon"
    reference = True

    def combine(self, usable: list[dict[str, Any]], config: StrategyConfig
                ) -> tuple[np.ndarray, dict[str, Any]]:
        return best_by("logprob", usable)


@register
class WeightedBestOfN(_Beams):
    """The Dirichlet mixture of the valid beams, weighted by softmax(α / τ) (Eq. 2-3)."""

    name = "w-bon"
    picks_one = False
    reference = True

    def combine(self, usable: list[dict[str, Any]], config: StrategyConfig
                ) -> tuple[np.ndarray, dict[str, Any]]:
        """The mixture under ``config.alpha``, computed with those under the other choices of α
        (kept on the first beam until :meth:`result` moves them to the item's result), unless
        some choice weighs no beam (every α -inf): then the configured choice's alone."""
        rows = [[alpha_of(c, alpha) for c in usable] for alpha in ALPHAS]
        try:
            mixtures, weights = weighted_mixtures([c["probs"] for c in usable], rows, config.tau)
        except (ValueError, ArithmeticError):
            for cand in usable:
                cand["alpha"] = alpha_of(cand, config.alpha)
            return mixture_by("alpha", usable, config.tau)
        own = ALPHAS.index(config.alpha)
        for cand, alpha, weight in zip(usable, rows[own], weights[own].tolist()):
            cand["alpha"], cand["weight"] = alpha, weight
        usable[0][_MIXTURES] = mixtures, weights.max(axis=1)
        return mixtures[own].copy(), usable[0]

    def result(self, item_id: str, generation: Generation, labels: Sequence[str],
               config: StrategyConfig, scores: list[float | None] | None) -> ItemResult:
        result = super().result(item_id, generation, labels, config, scores)
        for cand in result.candidates:
            if _MIXTURES in cand:
                result.alpha_mixtures, result.alpha_weight_max = cand.pop(_MIXTURES)
        return result


# W-BoN's mixtures and their largest weights under every α, on their way to the result
_MIXTURES = "_alpha_mixtures"


class _Verified(Strategy):
    """B=3 beams, each scored 0-1 by a verifier ALM; a valid candidate it gave no score keeps
    its item (``StrategyConfig.unscored``)."""

    needs = ("beam_search",)
    needs_verifier = True

    def decoding(self, config: StrategyConfig, labels: Sequence[str]) -> Decoding:
        return Decoding(mode="beam", num_candidates=config.verifier_beams,
                        **common_decoding(config, labels))

    def score(self, requests: Sequence[Request], generations: Sequence[Generation],
              context: RunContext) -> list[Scores]:
        return verify(context.verifier, requests, generations, context.dataset, context.config,
                      context.cache)

    def usable(self, candidates: list[dict[str, Any]], config: StrategyConfig
               ) -> list[dict[str, Any]]:
        valid = [c for c in candidates if c["valid"]]
        return valid if config.unscored == "keep" else [
            c for c in valid if c.get("verifier_score") is not None]

    def none_usable(self, candidates: list[dict[str, Any]]) -> str:
        return "the verifier scored none of the valid candidates"

    def result(self, item_id: str, generation: Generation, labels: Sequence[str],
               config: StrategyConfig, scores: list[float | None] | None) -> ItemResult:
        result = super().result(item_id, generation, labels, config, scores)
        valid = [c for c in result.candidates if c["valid"]]
        unscored = sum(c.get("verifier_score") is None for c in valid)
        if unscored and config.unscored == "keep" and result.probs is not None:
            what = ("the top beam taken" if self.name == "alm-v" else
                    "weighed as the lowest score given" if unscored < len(valid) else
                    "all weighed alike")
            result.notes.append(f"the verifier scored {len(valid) - unscored} of {len(valid)} "
                                f"valid candidates; {what}")
        return result


def verifier_scores_filled(usable: list[dict[str, Any]]) -> list[float]:
    """Each candidate's verifier score, an unscored one given the lowest score of the others
    (0.0 for all when none was scored: equal weights)."""
    given = [c["verifier_score"] for c in usable if c.get("verifier_score") is not None]
    floor = min(given) if given else 0.0
    return [floor if c.get("verifier_score") is None else c["verifier_score"] for c in usable]


@register
class VerifierBest(_Verified):
    """The candidate the verifier scored highest; of several sharing the top score, the first
    in beam order, or their mean (``verifier_ties``)."""

    name = "alm-v"
    reference = True

    def combine(self, usable: list[dict[str, Any]], config: StrategyConfig
                ) -> tuple[np.ndarray, dict[str, Any]]:
        probs, chosen, weights = verifier_pick(usable, config.verifier_ties)
        for cand, weight in zip(usable, weights or []):  # under "mean": what each counted
            cand["weight"] = weight
        return probs, chosen

    def result(self, item_id: str, generation: Generation, labels: Sequence[str],
               config: StrategyConfig, scores: list[float | None] | None) -> ItemResult:
        result = super().result(item_id, generation, labels, config, scores)
        for cand in result.candidates:  # under "mean", each candidate it took is marked
            if cand.get("weight", 0.0) > 0:
                cand["chosen"] = True
        if result.probs is not None:  # the prediction under each rule, for the cell's comparison
            usable = self.usable(result.candidates, config)
            result.tie_picks = np.array([verifier_pick(usable, ties)[0] for ties in VERIFIER_TIES])
        return result


def verifier_pick(usable: list[dict[str, Any]], ties: str
                  ) -> tuple[np.ndarray, dict[str, Any], list[float] | None]:
    """ALM-v's prediction, the candidate naming its rule, and under ``ties="mean"`` each usable
    candidate's weight (1/k of the k sharing the top score, 0 for the rest; None otherwise):
    the top beam where the verifier scored none."""
    scored = [c for c in usable if c.get("verifier_score") is not None]
    if not scored:  # nothing scored: the top beam (beams come best first)
        return np.array(usable[0]["probs"]), usable[0], None
    if ties == "first":
        return (*best_by("verifier_score", scored), None)
    top = max(c["verifier_score"] for c in scored)
    tied = {id(c) for c in scored if c["verifier_score"] == top}  # by identity: beams may read alike
    weights = [1.0 / len(tied) if id(c) in tied else 0.0 for c in usable]
    first = next(c for c in usable if id(c) in tied)
    return np.average([c["probs"] for c in usable], axis=0, weights=weights), first, weights


@register
class VerifierWeighted(_Verified):
    """The Dirichlet mixture weighted by the verifier's scores (``verifier_weighting``)."""

    name = "w-alm-v"
    picks_one = False
    reference = True

    def combine(self, usable: list[dict[str, Any]], config: StrategyConfig
                ) -> tuple[np.ndarray, dict[str, Any]]:
        for cand, score in zip(usable, verifier_scores_filled(usable)):
            cand["score_used"] = score
        return mixture_by("score_used", usable, config.tau, config.verifier_weighting)


@register
class Readout(Strategy):
    """Softmax over each full label's summed token log-probabilities: one forward pass."""

    name = "readout"
    needs = ("label_logprobs",)

    def prompt(self, corpus: str, transcript: str, labels: Sequence[str],
               prompts: str = "paper") -> str:
        return readout_prompt(corpus, transcript, labels, prompts)

    def first_keys(self, model: ModelAPI, requests: Sequence[Request], context: RunContext
                   ) -> list[str]:
        return labels_keys(model.info, requests, context.dataset.labels)

    def results(self, model: ModelAPI, requests: Sequence[Request], context: RunContext
                ) -> list[ItemResult]:
        rows = cached_label_logprobs(model, requests, context.dataset.labels, context.cache,
                                     context.progress)
        return [readout_result(r.item_id, row) for r, row in zip(requests, rows)]


def readout_result(item_id: str, row: LabelScores) -> ItemResult:
    """An item's readout: the softmax of its label scores, or the reason it has none."""
    if row.error is not None or not np.isfinite(row.logprobs).all():
        return ItemResult(item_id, error=row.error or "non-finite label scores",
                          reason="label scoring failed", notes=list(row.notes))
    weights = np.exp(row.logprobs - row.logprobs.max())
    probs = weights / weights.sum()
    scores = {"label_logprobs": row.logprobs.tolist(), "rule": "readout", "valid": True,
              "probs": probs.tolist(), "chosen": True}  # the evidence: each label's score
    return ItemResult(item_id, probs=probs, rule="readout", candidates=[scores], notes=list(row.notes))


@register
class SampleN(Strategy):
    """N temperature samples, every valid one counted the same (self-consistency)."""

    name = "sample-n"
    picks_one = False
    needs = ("n_candidates",)

    def decoding(self, config: StrategyConfig, labels: Sequence[str]) -> Decoding:
        return Decoding(mode="sample", num_candidates=config.samples, temperature=config.temperature,
                        **common_decoding(config, labels))

    def combine(self, usable: list[dict[str, Any]], config: StrategyConfig
                ) -> tuple[np.ndarray, dict[str, Any]]:
        return np.array([c["probs"] for c in usable]).mean(axis=0), usable[0]
