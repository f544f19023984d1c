"""KV caches for the harness's own decode loops, and the pool that keeps their buffers.

Three layouts: ``cat`` grows by concatenation (contiguous keys, one copy per step); ``prealloc``
writes in place into a buffer sized at the prefill and hands attention views of it; ``grouped``
(for the static decode step, harness.models._static_step) keeps one row per clip: the prompt
once, then one slot of new tokens per beam or sample. In ``cat`` and ``prealloc`` beams or samples
repeat the prompt and a beam reorder rewrites only the generated suffix; in ``grouped`` nothing is
repeated and a reorder moves no keys: a :class:`Lineage` table records which slot holds each
sequence's token at each step. With a :class:`KVPool`, ``prealloc`` and ``grouped`` buffers
outlive the batch, so that the next batch of the same shape writes into the same memory and a
CUDA graph captured on the first batch replays on it.
"""

from __future__ import annotations

CACHE_MODES = ("cat", "prealloc", "grouped")
ALIGN = 16  # buffer lengths are multiples of this, so masks over them suit the fused kernels

_PREFIX_LAYER = None
_SUFFIX_LAYER = None


def new_cache(config, reserve: int = 0, mode: str = "cat", pool: KVPool | None = None):
    """An empty KV cache for a decoder config (``reserve``: tokens of room past the prompt)."""
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=config)
    except TypeError:
        cache = DynamicCache()
    if mode not in CACHE_MODES:
        raise ValueError(f"cache mode must be one of {CACHE_MODES}, not {mode!r}")
    if mode == "cat":
        cache.layers = [suffix_layer_class()() for _ in range(config.num_hidden_layers)]
    else:
        layer = prefix_layer_class()
        grouped = mode == "grouped"
        cache.layers = [layer(reserve, pool, i, grouped) for i in range(config.num_hidden_layers)]
        if grouped:
            cache.lineage = Lineage()
            cache.reorder_cache = cache.lineage.reorder
    cache.mark_shared_prefix = lambda: mark_shared_prefix(cache)
    return cache


class Lineage:
    """Where a grouped cache holds each sequence's generated tokens.

    ``table[s, p]`` is the slot, within sequence ``s``'s clip, whose keys and values at generated
    position ``p`` are ``s``'s. Every sequence writes its step ``p`` into its own slot; a beam
    reorder copies rows of this (sequences, new tokens) table instead of the keys and values.
    The static step owns the table and attaches it at its first step; a reorder before that
    (after the prefill, when no sequence has a history yet) has nothing to move.
    """

    def __init__(self) -> None:
        self.table = None

    def reorder(self, beam_idx) -> None:
        if self.table is not None:
            self.table.copy_(self.table.index_select(0, beam_idx.to(self.table.device)))


def mark_shared_prefix(cache) -> None:
    """Declare the tokens cached so far identical across each clip's beams (the prompt)."""
    for layer in cache.layers:
        layer.shared = layer.length


class KVPool:
    """Zeroed buffers that survive from one batch to the next, one per slot (layer, k/v, role).

    ``take`` hands back the slot's buffer when it has the same shape but for a sequence length
    between what is asked and a little more (so batches of slightly shorter prompts share it);
    otherwise it drops the old buffer and allocates. What a reused buffer held beyond ``keep``
    positions is zeroed: a static decode step attends the whole buffer under a mask, and stale
    non-finite values would survive the mask.
    """

    def __init__(self, slack: float = 0.25, minimum_slack: int = 64) -> None:
        self.slack, self.minimum_slack = slack, minimum_slack
        self.buffers: dict = {}
        self.allocations = 0

    def take(self, slot, shape: tuple[int, ...], like, keep: int = 0):
        """A buffer of ``shape`` (or longer along dim 2) with ``like``'s dtype and device."""
        old = self.buffers.get(slot)
        need = shape[2]
        room = need + max(self.minimum_slack, int(need * self.slack))
        if (old is not None and old.dtype == like.dtype and old.device == like.device
                and old.shape[:2] == shape[:2] and old.shape[3:] == shape[3:]
                and need <= old.shape[2] <= room):
            old[:, :, keep:].zero_()
            return old
        self.buffers.pop(slot, None)  # release before allocating: the old one may be large
        self.allocations += 1
        buffer = like.new_zeros(shape)
        self.buffers[slot] = buffer
        return buffer

    def clear(self) -> None:
        self.buffers.clear()


def suffix_layer_class():
    """A concatenating cache layer whose beam reorder rewrites only the generated suffix."""
    global _SUFFIX_LAYER
    if _SUFFIX_LAYER is None:
        from transformers.cache_utils import DynamicLayer

        class SuffixReorderLayer(DynamicLayer):
            def __init__(self):
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
    """Build (once) the preallocated layer class; deferred so importing this needs no torch."""
    global _PREFIX_LAYER
    if _PREFIX_LAYER is None:
        _PREFIX_LAYER = _make_prefix_layer()
    return _PREFIX_LAYER


def _make_prefix_layer():
    from transformers.cache_utils import DynamicLayer

    class PrefixLayer(DynamicLayer):
        """A dynamic cache layer backed by one preallocated buffer per key and value.

        ``keys``/``values`` are views of the filled prefix, so attention reads only what exists.
        After :func:`mark_shared_prefix`, a beam reorder rewrites only the generated suffix.
        ``grouped``: beams or samples do not repeat the buffer (one row per clip); the static
        step writes each sequence's new keys into its clip's row, at one position per sequence.
        """

        def __init__(self, reserve: int = 0, pool: KVPool | None = None, index: int = 0,
                     grouped: bool = False):
            super().__init__()
            self.reserve, self.length, self.shared = reserve, 0, 0
            self.pool, self.index = pool, index
            self.grouped = grouped
            self._k = self._v = None
            self.write_index = None  # set by StaticStep: one position per sequence of a clip's row

        def update(self, key_states, value_states, *args, **kwargs):
            if self.write_index is not None:  # (sequences, heads, 1, dim) -> (clips, heads, group, dim)
                clips = self._k.shape[0]
                for buffer, new in ((self._k, key_states), (self._v, value_states)):
                    by_clip = new.reshape(clips, -1, new.shape[1], new.shape[3]).transpose(1, 2)
                    # a clip's sequences share its row: a non-finite key of one beam would
                    # survive the others' masks (NaN + mask is NaN) and spoil every beam; the
                    # beam itself is already flagged by its own non-finite logits
                    buffer.index_copy_(2, self.write_index, by_clip.nan_to_num(0.0, 0.0, 0.0))
                return self._k, self._v
            n = key_states.shape[-2]
            if self._k is None or self.length + n > self._k.shape[-2]:
                self._grow(key_states, value_states, self.length + n + self.reserve)
            self._k[:, :, self.length:self.length + n] = key_states
            self._v[:, :, self.length:self.length + n] = value_states
            self.length += n
            self.is_initialized = True
            self._views()
            return self.keys, self.values

        def _buffer(self, kind: str, shape, like, keep: int):
            # zeros, not empty: the static decode step attends the whole buffer under a mask,
            # and stale memory there (NaN or inf) would survive the mask and poison the softmax
            if self.pool is None:
                return like.new_zeros(shape)
            return self.pool.take((self.index, kind, "prompt"), tuple(shape), like, keep)

        def _grow(self, key_states, value_states, size: int) -> None:
            size = -(-size // ALIGN) * ALIGN
            shape_k = (*key_states.shape[:2], size, key_states.shape[-1])
            shape_v = (*value_states.shape[:2], size, value_states.shape[-1])
            written = self.length + key_states.shape[-2]  # copied over plus what update writes
            k = self._buffer("k", shape_k, key_states, written)
            v = self._buffer("v", shape_v, value_states, written)
            if self._k is not None:
                k[:, :, :self.length] = self._k[:, :, :self.length]
                v[:, :, :self.length] = self._v[:, :, :self.length]
            self._k, self._v = k, v
            self.device, self.dtype = key_states.device, key_states.dtype

        def _views(self) -> None:
            self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

        def get_seq_length(self, *args) -> int:
            return self.length

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.grouped or self._k is None:  # grouped: the row is the clip's, and the
                return  # static step lays its sequences' slots out after the prompt
            if self.pool is None:
                self._k = self._k.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)
            else:  # into pooled buffers, so that their addresses stay the same batch to batch
                self._k, self._v = (self._repeat_into(kind, x, repeats)
                                    for kind, x in (("k", self._k), ("v", self._v)))
            self._views()

        def _repeat_into(self, kind: str, x, repeats: int):
            shape = (x.shape[0] * repeats, *x.shape[1:])
            out = self.pool.take((self.index, kind, "repeated"), shape, x, keep=shape[2])
            out[:, :, : x.shape[2]].view(x.shape[0], repeats, *x.shape[1:]).copy_(x[:, None])
            return out

        def batch_select_indices(self, indices) -> None:
            if self._k is not None:
                self._k, self._v = self._k[indices], self._v[indices]
                self._views()

        def reorder_cache(self, beam_idx) -> None:
            if self.grouped or self._k is None or self.length == self.shared:
                return  # grouped: the cache's Lineage follows the beams
            index = beam_idx.to(self._k.device)
            part = slice(self.shared, self.length)
            self._k[:, :, part] = self._k[index, :, part]
            self._v[:, :, part] = self._v[index, :, part]

    PrefixLayer.__module__ = __name__
    return PrefixLayer
