"""KV caches for the harness's own decode loops, and the pool that keeps their buffers.

Two layouts: ``prealloc`` writes in place into a buffer sized at the prefill and hands attention
views of it (faster than concatenation on an H200); ``grouped`` (for the static decode step,
harness.models._static_step) keeps one row per clip: the prompt once, then one slot of new tokens
per beam or sample. In ``prealloc`` beams or samples repeat the prompt and a beam reorder rewrites
only the generated suffix; in ``grouped`` nothing is repeated and a reorder moves no keys: a
:class:`Lineage` table records which slot holds each sequence's token at each step. With a
:class:`KVPool`, buffers outlive the batch, so that the next batch of the same shape writes into
the same memory and a CUDA graph captured on the first batch replays on it. The layers
themselves, and ``new_cache``, are in :mod:`harness.models._kv_layers` (which needs
transformers).
"""

from __future__ import annotations

CACHE_MODES = ("prealloc", "grouped")
ALIGN = 16  # buffer lengths are multiples of this, so masks over them suit the fused kernels


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
    """Declare the tokens cached so far identical across each clip's beams (the prompt), in the
    layers that can use it (those of :func:`new_cache`; any other cache is left as it is).

    A function of the cache, not an attribute set on it: a closure stored on the cache made a
    reference cycle, which kept each batch's KV buffers alive until Python's cycle collector
    happened to run (an H200 run ran out of memory on it).
    """
    for layer in getattr(cache, "layers", ()):
        if hasattr(layer, "shared"):
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
