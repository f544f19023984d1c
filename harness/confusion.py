"""The classification scores of confusion counts: accuracy, macro-F1 and UAR, computed alike
for a cell (:mod:`harness.metrics`) and for each of its bootstrap resamples
(:mod:`harness.resampling`)."""

from __future__ import annotations

import numpy as np

CLASSIFICATION = ("acc", "f1", "uar")  # each also "_untied", with tied items left out


def confusion_scores(confusion) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1 over all K classes (zero_division=0) and UAR, the unweighted average
    recall (the mean over the classes the truth holds of the share of each found: balanced
    accuracy, speech emotion recognition's "UA"), of (..., K, K) confusion counts (rows: the
    truth), over the leading axes."""
    c = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    support = c.sum(axis=-1)
    denominator = support + c.sum(axis=-2)  # 2TP + FN + FP
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0).mean(axis=-1)
        recall = np.where(support > 0, tp / support, 0.0)
        uar = recall.sum(axis=-1) / (support > 0).sum(axis=-1)
        acc = tp.sum(axis=-1) / c.sum(axis=(-2, -1))
    return {"acc": acc, "f1": f1, "uar": uar}
