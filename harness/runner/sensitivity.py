"""What a cell's result would have been under each choice of a setting that changes no
generation, from the candidates it already had: W-BoN under each α, ALM-v under each tie rule;
and under each reading of its invalid items.

Every choice of a setting is scored over the same items; beside each choice but the cell's
reference one, the paired bootstrap 95% CI of each metric's change from it and, under the
expanded intervals, the paired sign-flip test's two-sided p. The readings of invalid items are
over different items (the valid ones, or every one), so they have no paired change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import metrics
from harness.resampling import mean_cis, resamples_for, sign_flip_p
from harness.runner.outcomes import answered, unanswered

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.runner.outcomes import Outcome

NAMES = ("js", "bc", "r2")  # the metrics compared


def alpha_sensitivity(dataset: Dataset, outcomes: Sequence[Outcome], n_resamples: int = 1000,
                      seed: int = 0, interval: str = "expanded") -> dict[str, dict[str, Any]]:
    """W-BoN's mean JS, BC and R² under each choice of alpha, over the items with a usable beam
    under every choice (an item whose beams all have α = -inf has none under ``raw`` and
    ``mean``), the same items for every choice (``n``), each change from ``raw`` beside
    ``mean`` and ``uniform`` (``js_change_ci``, ``js_change_p``: an item with one usable beam
    weighs it alike under every choice, so only the others change), and each choice's mean
    largest weight (``weight_max``: 1 where one beam takes all, as BoN; 1/B where B weigh
    alike)."""
    from harness.strategies import ALPHAS

    kept = [i for i, o in enumerate(outcomes) if o.alpha_preds is not None]
    preds = [p for o in outcomes if (p := o.alpha_preds) is not None]
    out = choice_sensitivity(dataset.votes[kept], preds, ALPHAS, "raw", n_resamples, seed,
                             interval)
    largest = [outcomes[i].alpha_weight_max for i in kept]
    if kept and all(w is not None for w in largest):  # how peaked each choice's weights were
        for alpha, mean in zip(ALPHAS, np.mean(np.array(largest, dtype=float), axis=0).tolist()):
            out[alpha]["weight_max"] = mean
    return out


def ties_sensitivity(dataset: Dataset, outcomes: Sequence[Outcome], n_resamples: int = 1000,
                     seed: int = 0, interval: str = "expanded") -> dict[str, dict[str, Any]]:
    """ALM-v's mean JS, BC and R² under each tie rule (``first``, ``mean``: which of the
    candidates sharing the verifier's top score it takes), over its valid items, the change of
    ``mean`` from ``first`` beside it (only an item whose top score was shared changes)."""
    from harness.strategies import VERIFIER_TIES

    kept = [i for i, o in enumerate(outcomes) if o.tie_preds is not None]
    preds = [p for o in outcomes if (p := o.tie_preds) is not None]
    return choice_sensitivity(dataset.votes[kept], preds, VERIFIER_TIES, "first", n_resamples,
                              seed, interval)


def choice_sensitivity(votes: np.ndarray, preds: Sequence[np.ndarray], choices: Sequence[str],
                       reference: str, n_resamples: int = 1000, seed: int = 0,
                       interval: str = "expanded") -> dict[str, dict[str, Any]]:
    """Each choice's mean JS, BC and R² over the items (``preds``: per item, a prediction per
    choice, in ``choices`` order), and beside each but ``reference`` the paired bootstrap 95%
    CI of each metric's change from it (``js_change_ci``: the mean of choice − reference, per
    item), all in one draw, and under the expanded intervals the paired sign-flip test's
    two-sided p (``js_change_p``); empty for no items."""
    if not len(preds):
        return {}
    stacked = np.array(preds)  # (items, choices, K)
    scores = [metrics.per_item(votes, stacked[:, a]) for a in range(len(choices))]
    out: dict[str, dict[str, Any]] = {
        choice: {"n": len(preds), **{m: float(scores[a][m].mean()) for m in NAMES}}
        for a, choice in enumerate(choices)}
    base = choices.index(reference)
    others = [a for a in range(len(choices)) if a != base]
    changes = np.column_stack([scores[a][m] - scores[base][m] for a in others for m in NAMES])
    cis = iter(mean_cis(changes, n_resamples, seed, interval=interval))
    flips = iter(sign_flip_p(changes, resamples_for(0.95, n_resamples), seed)
                 if interval == "expanded" else [])  # the plain intervals: the CI alone, as before
    for a in others:
        for m in NAMES:
            low, high = next(cis)
            out[choices[a]][f"{m}_change_ci"] = [low, high] if math.isfinite(low + high) else None
            if (flip := next(flips, None)) is not None:
                out[choices[a]][f"{m}_change_p"] = min(1.0, 2 * min(flip))
    return out


def invalid_sensitivity(dataset: Dataset, outcomes: Sequence[Outcome], n_resamples: int = 1000,
                        seed: int = 0, interval: str = "expanded") -> dict[str, dict[str, Any]]:
    """The cell's mean JS, BC and R² under each reading of its answers that gave no distribution
    (:mod:`harness.runner.invalid`): ``left_out`` (over its valid items) and ``uniform`` (each
    such answer scored as a uniform guess, 1/K for each of the K classes: over every item but
    those that failed, each mean's 95% CI beside it, ``js_ci``); ``n`` the items each is over.
    The cell's own means are one of the two (``StrategyConfig.invalid``). Empty where every
    answer gave a distribution (the two readings agree)."""
    k = len(dataset.labels)
    valid, missing = answered(outcomes), unanswered(outcomes)
    if not missing.any():
        return {}
    scope = valid | missing  # the items that did not fail
    pred = np.array([o.probs if v else np.full(k, 1.0 / k)
                     for o, v, s in zip(outcomes, valid, scope) if s]).reshape(-1, k)
    scores = metrics.per_item(dataset.votes[scope], pred)
    left_out: dict[str, Any] = {"n": int(valid.sum())}
    if valid.any():
        left_out.update({m: float(scores[m][valid[scope]].mean()) for m in NAMES})
    uniform: dict[str, Any] = {"n": int(scope.sum())}
    columns = np.column_stack([scores[m] for m in NAMES])
    for m, column, (low, high) in zip(NAMES, columns.T,
                                      mean_cis(columns, n_resamples, seed, interval=interval)):
        uniform[m] = float(column.mean())
        uniform[f"{m}_ci"] = [low, high] if math.isfinite(low + high) else None
    return {"left_out": left_out, "uniform": uniform}
