"""Chance baselines: what a score means when the model knows nothing about the audio.

They are in the model registry (kind ``chance``), predict without a prompt, and are filed under the
strategy registered as the chance cell (``base``), so the tables compare models against them.
"""

from __future__ import annotations

import zlib

import numpy as np

from harness.data import Dataset
from harness.models.api import Capabilities, ModelInfo

BASELINES = ("uniform", "label-prior", "annotator")


def uniform(dataset: Dataset) -> np.ndarray:
    """(N, K) uniform distributions."""
    k = len(dataset.labels)
    return np.full((len(dataset), k), 1.0 / k)


def label_prior(dataset: Dataset) -> np.ndarray:
    """(N, K) copies of the corpus's mean annotator distribution (the same for every item)."""
    prior = dataset.soft.mean(axis=0)
    return np.tile(prior / prior.sum(), (len(dataset), 1))


def predict(name: str, dataset: Dataset) -> np.ndarray:
    """Predictions of the baseline ``name`` (``"uniform"``, ``"label-prior"``; the annotator
    reference also changes the targets: see :func:`annotator`)."""
    if name == "uniform":
        return uniform(dataset)
    if name == "label-prior":
        return label_prior(dataset)
    if name == "annotator":
        return annotator(dataset)[0]
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")


def rater_votes(item) -> list[np.ndarray]:
    """Each rater's own in-set votes: IEMOCAP's from its EmoEvaluation lines; where a corpus
    keeps only counts of one vote per rater (MSP-Podcast's workers, CREMA-D's responses), one
    one-hot per vote."""
    if "rater_votes" in item.meta:
        return [np.asarray(v, dtype=np.float64) for v in item.meta["rater_votes"]]
    counts = np.asarray(item.votes)
    if not np.allclose(counts, np.round(counts)):
        return []
    return [np.eye(len(counts))[k] for k in range(len(counts)) for _ in range(int(round(counts[k])))]


def annotator(dataset: Dataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """How well one person predicts the others: per item, one rater drawn by ``seed`` and the
    item id is held out, its choice (argmax of its votes, ties to the first label) as a one-hot
    is the prediction, and the remaining raters' votes are the target. Items with fewer than two
    raters get a row of NaN (invalid). Returns (predictions, targets), both (N, K)."""
    k = len(dataset.labels)
    preds, targets = np.full((len(dataset), k), np.nan), np.array(dataset.votes, dtype=np.float64)
    for i, item in enumerate(dataset):
        raters = rater_votes(item)
        if len(raters) < 2:
            continue
        pick = np.random.default_rng([seed, zlib.crc32(item.id.encode())]).integers(len(raters))
        rest = np.sum([v for j, v in enumerate(raters) if j != pick], axis=0)
        if rest.sum() <= 0:
            continue
        preds[i] = np.eye(k)[int(np.argmax(raters[pick]))]
        targets[i] = rest
    return preds, targets


class ChanceBaseline:
    """A chance baseline as the registry builds it: ``predict(dataset)`` -> (N, K)."""

    def __init__(self, name: str) -> None:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")
        none = Capabilities(audio=False, logprobs=False, n_candidates=False, beam_search=False,
                            label_logprobs=False)
        self.info = ModelInfo(name, "chance", capabilities=none)

    def predict(self, dataset: Dataset) -> np.ndarray:
        return predict(self.info.name, dataset)


def uniform_baseline() -> ChanceBaseline:
    return ChanceBaseline("uniform")


def label_prior_baseline() -> ChanceBaseline:
    return ChanceBaseline("label-prior")


def annotator_baseline() -> ChanceBaseline:
    return ChanceBaseline("annotator")
