"""Batch sizes that ran out of GPU memory, remembered for a backend's later calls.

:func:`~harness.models._hf_common.clips_per_batch` estimates a batch from free memory, and where
the estimate is still too high :func:`~harness.models._hf_common.batched` halves the batch and
runs it again. That retry lives in one call: the next call (the next 256 items of a run, the next
chunk of a grid's plan) estimated the same size again, ran out of memory at the same point again
and threw away what the batch had computed before it did, once per call. A backend now keeps,
per kind of batch (the sequences each clip decodes and the tokens each adds), the share of the
estimate that fitted, and its later estimates of that kind are scaled by it. The share only
shrinks, so a batch size that ran out of memory is not tried again by that backend.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any


class LearnedBatchSizes:
    """Per kind of batch, the share of the memory estimate that fitted (1 until a batch of that
    kind ran out of memory), and how many times a batch was halved in all."""

    def __init__(self) -> None:
        self._share: dict[Hashable, float] = {}
        self.halvings = 0

    def size(self, kind: Hashable, estimate: int) -> int:
        """The batch size to try for ``kind``: ``estimate`` scaled by what fitted before."""
        return max(1, int(estimate * self._share.get(kind, 1.0)))

    def learner(self, kind: Hashable) -> Callable[[int, int], None]:
        """What :func:`~harness.models._hf_common.batched` calls when a batch of ``kind`` of
        ``tried`` clips ran out of memory and ``fitted`` are tried next."""

        def halved(tried: int, fitted: int) -> None:
            self.halvings += 1
            self._share[kind] = self._share.get(kind, 1.0) * fitted / max(1, tried)

        return halved


def run_batched(backend, requests: Sequence, run: Callable[[list], Any], sequences_per_clip: int,
                new_tokens: int, on_error: Callable[[Any, str], Any]) -> list:
    """:func:`~harness.models._hf_common.batched` on ``backend`` (a
    :class:`~harness.models.fast_audio_lm.FastAudioLM`) at its ``batch_size_for``'s size, a
    halving remembered in its ``batch_sizes`` and the clips it heard lately let go of before the
    smaller batch runs (what that frees is worth more than what they would save)."""
    from harness.models._hf_common import batched

    learn = backend.batch_sizes.learner((sequences_per_clip, new_tokens))

    def halved(tried: int, fitted: int) -> None:
        learn(tried, fitted)
        if backend.heard is not None:
            backend.heard.clear()

    return batched(requests, run,
                   backend.batch_size_for(requests, sequences_per_clip, new_tokens),
                   backend._torch, on_error, halved)
