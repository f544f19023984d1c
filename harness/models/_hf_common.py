"""Helpers shared by the Hugging Face backends: caches, dtypes, revisions, OOM-safe batching."""

from __future__ import annotations

import hashlib
import inspect
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

AUDIO_TOKEN = "<|AUDIO|>"


def cache_kwarg(module) -> str:
    """The keyword a transformers decoder takes its KV cache by (renamed across 5.x releases)."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


CACHE_MODES = ("cat", "prealloc")


def new_cache(config, reserve: int = 0, mode: str = "cat"):
    """An empty KV cache for a decoder config whose beam reorder copies only the generated part.

    ``cat`` grows by concatenation (contiguous keys, one copy per step); ``prealloc`` writes in
    place into a buffer sized at the prefill (``reserve`` tokens of room) and hands attention
    views of it. Which is faster depends on the attention kernels: bench/gpu_throughput.py
    measures both.
    """
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=config)
    except TypeError:
        cache = DynamicCache()
    if mode not in CACHE_MODES:
        raise ValueError(f"cache mode must be one of {CACHE_MODES}, not {mode!r}")
    layer = prefix_layer_class() if mode == "prealloc" else suffix_layer_class()
    cache.layers = [layer(reserve) for _ in range(config.num_hidden_layers)]
    cache.mark_shared_prefix = lambda: mark_shared_prefix(cache)
    return cache


def mark_shared_prefix(cache) -> None:
    """Declare the tokens cached so far identical across each clip's beams (the prompt)."""
    for layer in cache.layers:
        layer.shared = layer.length


_PREFIX_LAYER = None
_SUFFIX_LAYER = None


def suffix_layer_class():
    """A concatenating cache layer whose beam reorder rewrites only the generated suffix."""
    global _SUFFIX_LAYER
    if _SUFFIX_LAYER is None:
        from transformers.cache_utils import DynamicLayer

        class SuffixReorderLayer(DynamicLayer):
            def __init__(self, reserve: int = 0):
                super().__init__()
                self.shared = 0

            @property
            def length(self) -> int:
                return self.get_seq_length()

            def reorder_cache(self, beam_idx) -> None:
                n = self.get_seq_length()
                if n > self.shared:  # in place: the prompt part is the same for every beam
                    index = beam_idx.to(self.keys.device)
                    self.keys[:, :, self.shared:n] = self.keys[index, :, self.shared:n]
                    self.values[:, :, self.shared:n] = self.values[index, :, self.shared:n]

        SuffixReorderLayer.__module__ = __name__
        _SUFFIX_LAYER = SuffixReorderLayer
    return _SUFFIX_LAYER


def prefix_layer_class():
    """Build (once) the cache layer class; deferred so importing this module needs no torch."""
    global _PREFIX_LAYER
    if _PREFIX_LAYER is None:
        _PREFIX_LAYER = _make_prefix_layer()
    return _PREFIX_LAYER


def _make_prefix_layer():
    import torch
    from transformers.cache_utils import DynamicLayer

    class PrefixLayer(DynamicLayer):
        """A dynamic cache layer backed by one preallocated buffer per key and value.

        ``keys``/``values`` are views of the filled prefix, so attention reads only what exists.
        After :func:`mark_shared_prefix`, a beam reorder rewrites only the generated suffix: the
        prompt part is the same for every beam of a clip.
        """

        def __init__(self, reserve: int = 0):
            super().__init__()
            self.reserve, self.length, self.shared = reserve, 0, 0
            self._k = self._v = None
            self.write_index = None  # set by StaticStep: write there, attend the whole buffer

        def update(self, key_states, value_states, *args, **kwargs):
            if self.write_index is not None:
                self._k.index_copy_(2, self.write_index, key_states)
                self._v.index_copy_(2, self.write_index, value_states)
                return self._k, self._v
            n = key_states.shape[-2]
            if self._k is None or self.length + n > self._k.shape[-2]:
                self._grow(key_states, value_states, self.length + n + self.reserve)
            self._k[:, :, self.length:self.length + n] = key_states
            self._v[:, :, self.length:self.length + n] = value_states
            self.length += n
            self.is_initialized = True
            self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]
            return self.keys, self.values

        def _grow(self, key_states, value_states, size: int) -> None:
            shape_k = (*key_states.shape[:2], size, key_states.shape[-1])
            shape_v = (*value_states.shape[:2], size, value_states.shape[-1])
            # zeros, not empty: the static decode step attends the whole buffer under a mask, and
            # stale memory there (NaN or inf) would survive the mask and poison the softmax
            k = key_states.new_zeros(shape_k)
            v = value_states.new_zeros(shape_v)
            if self._k is not None:
                k[:, :, :self.length] = self._k[:, :, :self.length]
                v[:, :, :self.length] = self._v[:, :, :self.length]
            self._k, self._v = k, v
            self.device, self.dtype = key_states.device, key_states.dtype

        def get_seq_length(self, *args) -> int:
            return self.length

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self._k is not None:
                self._k = self._k.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)
                self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

        def batch_select_indices(self, indices) -> None:
            if self._k is not None:
                self._k, self._v = self._k[indices], self._v[indices]
                self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

        def reorder_cache(self, beam_idx) -> None:
            if self._k is None or self.length == self.shared:
                return
            index = beam_idx.to(self._k.device)
            part = slice(self.shared, self.length)
            self._k[:, :, part] = self._k[index, :, part]
            self._v[:, :, part] = self._v[index, :, part]

    PrefixLayer.__module__ = __name__
    del torch
    return PrefixLayer


def warn_truncated(requests: Sequence, max_samples: int) -> None:
    """Warn, naming each item, about clips longer than the model's audio window."""
    for r in requests:
        if len(r.audio) > max_samples:
            warnings.warn(f"{r.item_id or r.audio_hash[:12]}: {len(r.audio) / 16_000:.1f} s clip "
                          f"truncated to the model's {max_samples / 16_000:.0f} s audio window",
                          stacklevel=3)


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def hf_cache_snapshot(repo_id: str) -> str | None:
    """The local Hugging Face cache folder of ``repo_id``, if its config is cached (no download)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return str(Path(found).parent) if isinstance(found, str) else None


def weights_revision(path: str | Path) -> str:
    """A revision id for a local checkpoint: the hub snapshot hash, else a hash of its files.

    Small checkpoints are hashed whole; large shards by name, size and their first and last MiB.
    """
    path = Path(path)
    if path.parent.name == "snapshots":
        return path.name
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as stream:
            if size <= 64 * 2**20:
                h.update(stream.read())
            else:
                h.update(stream.read(2**20))
                stream.seek(-(2**20), 2)
                h.update(stream.read())
    return "sha256:" + h.hexdigest()[:16]


def batched(requests: Sequence, run: Callable[[list], list], batch_size: int, torch,
            on_error: Callable[[str], Any]) -> list:
    """Run ``run`` over length-sorted batches; halve the batch on out-of-memory and retry.

    Results come back in request order. A single request that still does not fit, or whose batch
    raises, is given ``on_error(reason)`` instead of sinking the rest.
    """
    order = sorted(range(len(requests)), key=lambda i: -len(requests[i].audio))
    results: list = [None] * len(requests)
    start, size = 0, max(1, batch_size)
    while start < len(order):
        chunk = order[start:start + size]
        try:
            outputs = run([requests[i] for i in chunk])
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if size > 1:
                size //= 2
                warnings.warn(f"out of GPU memory: batch size halved to {size}", stacklevel=2)
                continue
            outputs = [on_error("out of GPU memory for a single clip")]
        except (RuntimeError, ValueError) as exc:
            if len(chunk) > 1:  # find the culprit: retry one by one
                outputs = [_one(run, requests[i], on_error) for i in chunk]
            else:
                outputs = [on_error(f"{type(exc).__name__}: {exc}")]
        for i, out in zip(chunk, outputs):
            results[i] = out
        start += len(chunk)
    return results


def _one(run, request, on_error):
    try:
        return run([request])[0]
    except (RuntimeError, ValueError) as exc:
        return on_error(f"{type(exc).__name__}: {exc}")
