"""Chance baselines: what a score means when the model knows nothing about the audio."""

from __future__ import annotations

import numpy as np

from harness.data import Dataset

BASELINES = ("uniform", "label-prior")


def uniform(dataset: Dataset) -> np.ndarray:
    """(N, K) uniform distributions."""
    k = len(dataset.labels)
    return np.full((len(dataset), k), 1.0 / k)


def label_prior(dataset: Dataset) -> np.ndarray:
    """(N, K) copies of the corpus's mean annotator distribution (the same for every item)."""
    prior = dataset.soft.mean(axis=0)
    return np.tile(prior / prior.sum(), (len(dataset), 1))


def predict(name: str, dataset: Dataset) -> np.ndarray:
    """Predictions of the baseline ``name`` (``"uniform"`` or ``"label-prior"``)."""
    if name == "uniform":
        return uniform(dataset)
    if name == "label-prior":
        return label_prior(dataset)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")
