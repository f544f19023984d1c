"""The KV cache layers and :func:`new_cache` (imported by the backend that builds caches, so that
:mod:`harness.models._kv_cache` itself needs neither torch nor transformers)."""

from __future__ import annotations

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from harness.models._kv_cache import ALIGN, CACHE_MODES, KVPool, Lineage


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
        assert self._k is not None and self._v is not None
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
        assert self.pool is not None
        out = self.pool.take((self.index, kind, "repeated"), shape, x, keep=shape[2])
        out[:, :, : x.shape[2]].view(x.shape[0], repeats, *x.shape[1:]).copy_(x[:, None])
        return out

    def adopt(self, other: PrefixLayer) -> None:
        """Hold what ``other`` holds so far, in its buffers: new tokens are written past that
        length, so the part held (the prompt) is shared, never written (see :func:`fork_cache`)."""
        self._k, self._v, self.length = other._k, other._v, other.length
        self.is_initialized = other.is_initialized
        if self._k is not None:  # an empty layer has no device or dtype yet
            self.device, self.dtype = other.device, other.dtype
            self._views()

    @property
    def nbytes(self) -> int:
        """Bytes of this layer's key and value buffers (what decode steps read)."""
        return 0 if self._k is None else 2 * self._k.numel() * self._k.element_size()

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


def new_cache(config, reserve: int = 0, mode: str = "prealloc", pool: KVPool | None = None):
    """An empty KV cache for a decoder config (``reserve``: tokens of room past the prompt)."""
    try:
        cache = DynamicCache(config=config)
    except TypeError:
        cache = DynamicCache()
    if mode not in CACHE_MODES:
        raise ValueError(f"cache mode must be one of {CACHE_MODES}, not {mode!r}")
    grouped = mode == "grouped"
    cache.layers = [PrefixLayer(reserve, pool, i, grouped) for i in range(config.num_hidden_layers)]
    if grouped:  # beams reorder the lineage table, not the keys and values
        lineage = Lineage()
        cache.lineage = lineage  # type: ignore[attr-defined]
        cache.reorder_cache = lineage.reorder  # type: ignore[method-assign]
    return cache


def fork_cache(cache, config, reserve: int):
    """A cache of :func:`new_cache` starting from what ``cache`` holds (the prompt), in its
    buffers, with room ``reserve`` for one decoding.

    One prefill serves several decodings in turn: each decodes from its own fork. A decoding
    writes its tokens past the prompt in the shared buffers (the forks' tokens overwrite each
    other there, so the forks run one after the other) or into repeated copies (beams and
    samples of the ordinary layout), and never into the prompt. The buffers must already hold
    the largest ``reserve`` (prefill with it): a fork that grew would take new ones.
    """
    first = cache.layers[0]
    forked = new_cache(config, reserve, "grouped" if first.grouped else "prealloc", first.pool)
    for mine, theirs in zip(forked.layers, cache.layers):
        mine.adopt(theirs)
    return forked
