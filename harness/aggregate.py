"""Combining several candidate distributions into one (the paper's Eq. 2–3).

Each candidate b is a Dirichlet with concentration β_b = τ·p̂_b; the prediction is the mixture's
mean, Σ_b w_b E_Dir(β_b)[p] = Σ_b w_b p̂_b, with weights w from the candidates' scores (beam
log-likelihoods or verifier scores). The mean does not depend on τ; τ is kept so that the
mixture itself (e.g. its variance) can be inspected.
"""

from __future__ import annotations

import math

import numpy as np

WEIGHTINGS = ("softmax", "linear")


def candidate_weights(scores, weighting: str = "softmax") -> np.ndarray:
    """Turn B scores into B weights summing to 1.

    ``softmax``: exp(s_b) / Σ exp(s_j), computed after subtracting the max, so log-likelihoods
    such as −300 or −1e4 neither underflow to all-zero nor give NaN; −inf scores get weight 0.
    ``linear``: s_b / Σ s_j over the non-negative scores (uniform when all are zero).

    Raises:
        ValueError: no scores, a NaN or +inf score, a negative score under ``linear``, or every
            score −inf.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise ValueError("no candidates to weight")
    top = s.max()  # NaN anywhere makes it NaN; +inf anywhere makes it +inf
    if not top < math.inf:
        raise ValueError(f"scores must be finite or -inf, got {s.tolist()}")
    if weighting == "softmax":
        if top == -math.inf:
            raise ValueError("every candidate has score -inf")
        w = np.exp(s - top)
        return w / w.sum()
    if weighting == "linear":
        if (s < 0).any() or np.isinf(s).any():
            raise ValueError(f"linear weighting needs finite non-negative scores, got {s.tolist()}")
        with np.errstate(over="ignore"):
            total = s.sum()
        if total <= 0:
            return np.full(s.size, 1.0 / s.size)
        if not np.isfinite(total):  # scores near 1e308 overflow their sum: scale them first
            scaled = s / s.max()
            return scaled / scaled.sum()
        return s / total
    raise ValueError(f"unknown weighting {weighting!r}; choose from {WEIGHTINGS}")


def dirichlet_mixture(dists, scores, tau: float = 1.0, weighting: str = "softmax") -> np.ndarray:
    """Mean of the Dirichlet mixture Σ_b w_b Dir(τ·p̂_b).

    Args:
        dists: (B, K) candidate distributions (rows are renormalised to sum to 1).
        scores: (B,) scores; higher means more trusted.
        tau: Concentration scale τ > 0 (does not change the mean).
        weighting: ``"softmax"`` (default, Eq. 3) or ``"linear"``.

    Returns:
        (K,) distribution on the simplex.
    """
    return dirichlet_mixtures(dists, [scores], tau, weighting)[0]


def dirichlet_mixtures(dists, score_rows, tau: float = 1.0, weighting: str = "softmax"
                       ) -> np.ndarray:
    """:func:`dirichlet_mixture` of the same candidates under each row of scores, (R, K): the
    candidates' means computed once (W-BoN's mixture under each choice of α)."""
    return weighted_mixtures(dists, score_rows, tau, weighting)[0]


def weighted_mixtures(dists, score_rows, tau: float = 1.0, weighting: str = "softmax"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dirichlet_mixtures`, (R, K), and the weights each row gave the candidates, (R, B)."""
    means = candidate_means(dists, tau)
    weights = _softmax_rows(score_rows, means.shape[0]) if weighting == "softmax" else None
    if weights is None:  # row by row, each row's problem raised as candidate_weights words it
        rows, each = [], []
        for scores in score_rows:
            rows.append(candidate_weights(scores, weighting))
            each.append(mixture_mean(means, rows[-1]))
        return np.array(each), np.array(rows)
    mixed = np.array([w @ means for w in weights])  # as mixture_mean: the same sums, bit for bit
    return mixed / mixed.sum(axis=1, keepdims=True), weights


def _softmax_rows(score_rows, candidates: int) -> np.ndarray | None:
    """:func:`candidate_weights` (softmax) of every row at once, or None when a row is not a
    row of ``candidates`` scores of which the largest is finite."""
    try:
        s = np.array(score_rows, dtype=np.float64)
    except (ValueError, TypeError):  # rows of different lengths
        return None
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] != candidates:
        return None
    top = s.max(axis=1, keepdims=True)  # NaN or +inf anywhere, or a row all -inf: not finite
    if not np.isfinite(top).all():
        return None
    w = np.exp(s - top)
    return w / w.sum(axis=1, keepdims=True)


def candidate_means(dists, tau: float = 1.0) -> np.ndarray:
    """Each candidate Dirichlet's mean, (B, K): the mean of Dir(τ·p̂_b) is p̂_b / Σ p̂_b whatever
    τ is (τ is checked all the same).

    Raises:
        ValueError: not a non-empty (B, K) array; a row that is not finite, non-negative and
            non-zero; τ not positive and finite.
    """
    p = np.asarray(dists, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"dists must be a non-empty (B, K) array, got shape {p.shape}")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be positive and finite, got {tau}")
    top = float(p.max())  # NaN anywhere makes it NaN
    if top * p.shape[1] >= _NO_OVERFLOW and top < math.inf:  # a row's sum could overflow:
        row_max = p.max(axis=1, keepdims=True)  # each row is scaled by its largest entry first
        p = p / np.where(row_max > 0, row_max, 1.0)
    sums = p.sum(axis=1)
    if not (top < math.inf and p.min() >= 0 and min(sums.tolist()) > 0):
        raise ValueError("each candidate distribution must be finite, non-negative, non-zero")
    beta = p / sums[:, None]
    return beta / beta.sum(axis=1, keepdims=True)


def mixture_mean(means: np.ndarray, weights) -> np.ndarray:
    """Σ_b w_b mean_b, renormalised: the mixture's mean from :func:`candidate_means` and
    :func:`candidate_weights`."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (means.shape[0],):
        raise ValueError(f"{means.shape[0]} candidates but {w.size} scores")
    mixed = w @ means
    return mixed / mixed.sum()


_NO_OVERFLOW = 1e307  # a row of entries whose largest times their count is below this sums finitely
