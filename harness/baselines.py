"""Chance baselines: what a score means when the model knows nothing about the audio.

They are in the model registry (kind ``chance``), predict without a prompt, and are filed under the
strategy registered as the chance cell (``base``), so the tables compare models against them.
"""

from __future__ import annotations

import numpy as np

from harness.data import Dataset
from harness.models.api import Capabilities, ModelInfo

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
