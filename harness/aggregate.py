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
    p = np.asarray(dists, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"dists must be a non-empty (B, K) array, got shape {p.shape}")
    row_max = p.max(axis=1)  # NaN anywhere makes its row's NaN
    top = float(row_max.max())
    if not (row_max.min() > 0 and top < math.inf and p.min() >= 0):
        raise ValueError("each candidate distribution must be finite, non-negative, non-zero")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be positive and finite, got {tau}")
    weights = [candidate_weights(scores, weighting) for scores in score_rows]
    for w in weights:
        if w.size != p.shape[0]:
            raise ValueError(f"{p.shape[0]} candidates but {w.size} scores")
    # the mean of Dir(tau * p_b) is p_b / sum(p_b) whatever tau is; where entries near 1e308
    # could overflow a row's sum, the row is scaled by its largest entry first
    if top * p.shape[1] >= _NO_OVERFLOW:
        p = p / row_max[:, None]
    sums = p.sum(axis=1, keepdims=True)
    beta = p / sums
    means = beta / beta.sum(axis=1, keepdims=True)
    out = np.empty((len(weights), p.shape[1]))
    for row, w in enumerate(weights):
        mixed = w @ means
        out[row] = mixed / mixed.sum()
    return out


_NO_OVERFLOW = 1e307  # a row of entries whose largest times their count is below this sums finitely
