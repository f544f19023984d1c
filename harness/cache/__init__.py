"""Persistent generation cache: SQLite in WAL mode, JSON values, safe for several processes.

Every model call of a strategy goes through it, keyed by what determines the answer: model name
and weights revision, dtype and backend options, the prompt, the audio content, the decoding
parameters and seed. :mod:`harness.cache.store` is the file, :mod:`harness.cache.calls` the
calls through it, ``python -m harness.cache merge`` folds several machines' caches into one.
"""

from harness.cache.calls import (
    CHUNK,
    cached_generate,
    cached_label_logprobs,
    generation_key,
    generation_keys,
    labels_key,
    labels_keys,
    put_generations,
)
from harness.cache.merge import merge_caches
from harness.cache.store import SCHEMA_VERSION, CacheError, GenerationCache, sha256

__all__ = [
    "CHUNK",
    "SCHEMA_VERSION",
    "CacheError",
    "GenerationCache",
    "cached_generate",
    "cached_label_logprobs",
    "generation_key",
    "generation_keys",
    "labels_key",
    "labels_keys",
    "merge_caches",
    "put_generations",
    "sha256",
]
