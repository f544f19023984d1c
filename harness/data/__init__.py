"""Corpora: items with their annotators' votes, read from the real release layouts."""

from harness.data.audio import TARGET_SR, load_audio, read_audio
from harness.data.dataset import Dataset, Item
from harness.data.loader import CORPORA, load_dataset, option_names, register_corpus, resolve_root
from harness.data.problems import AudioError, DataError, Problem

__all__ = [
    "CORPORA",
    "TARGET_SR",
    "AudioError",
    "DataError",
    "Dataset",
    "Item",
    "Problem",
    "load_audio",
    "read_audio",
    "load_dataset",
    "option_names",
    "register_corpus",
    "resolve_root",
]
