"""One clip heard with several prompts that start alike, prefilled once up to where they part.

A verifier hears each item's clip once per candidate, with prompts that differ only in the
candidate's text at their end. In a batch of such requests (the same audio array: the strategies
and the cache hand a verifier's requests of one item the same one), the clip is encoded once and
the chat text up to the prompts' longest common run of tokens (the audio included) is run through
the LM once per clip; each request's own remaining tokens then run after a copy of that cache.
Each request's rows are positioned as in its own prefill, so the logits equal it but for the last
bits of the arithmetic (tested within 1e-5 in float32; greedy answers equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.models._decode import Prefilled
from harness.models._hf_common import expand_placeholders, to_device


def clip_owners(audios: Sequence[np.ndarray]) -> tuple[list[int], list[int]]:
    """Each request's clip as an index among the distinct clips (the same array object), and the
    first request of each distinct clip."""
    seen: dict[int, int] = {}
    owners: list[int] = []
    firsts: list[int] = []
    for i, audio in enumerate(audios):
        if id(audio) not in seen:
            seen[id(audio)] = len(firsts)
            firsts.append(i)
        owners.append(seen[id(audio)])
    return owners, firsts


def common_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens the rows share at their start, leaving each at least one of its own (the last
    position's logits are each request's own)."""
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows[1:]):
        n += 1
    return n


def prefill_shared(backend, audios: Sequence[np.ndarray], prompts: Sequence[str],
                   reserve: int) -> Prefilled | None:
    """The prefill of ``backend`` (a :class:`~harness.models.fast_audio_lm.FastAudioLM`) with
    each clip and its prompts' common start run once; None where no clip repeats in the batch
    or where the prompts part before the audio (the ordinary prefill then runs)."""
    owners, firsts = clip_owners(audios)
    if len(firsts) == len(audios):
        return None
    audio, out_lens, pieces = backend.encode_clips([audios[i] for i in firsts])
    per_clip, counts = backend._placeholders(pieces, out_lens.tolist())
    texts = backend.chat.after_prefix(prompts, [per_clip[o] for o in owners])
    rows = backend.chat.rows(texts)
    cuts = [common_length([rows[i] for i, o in enumerate(owners) if o == g])
            for g in range(len(firsts))]
    heads = [rows[first][:cut] for first, cut in zip(firsts, cuts)]
    if any(head.count(backend.audio_id) != k for head, k in zip(heads, per_clip)):
        return None  # the audio is not in the common start: nothing to share
    first = backend.prefill_rows(audio, out_lens, heads, [texts[i] for i in firsts], per_clip,
                                 counts, reserve=0, pooled=False)
    tails = [rows[i][cuts[o]:] for i, o in enumerate(owners)]
    ids, own = expand_placeholders(tails, texts, [0] * len(tails), [], backend.audio_id,
                                   backend.pad_id)
    torch = backend._torch
    with torch.inference_mode():
        index = to_device(np.asarray(owners), backend.device)
        prefix = [(layer.keys.index_select(0, index), layer.values.index_select(0, index))
                  for layer in first.cache.layers]
        return backend.prefill_after(prefix, first.attention_mask.index_select(0, index),
                                     backend.embed(to_device(ids, backend.device)),
                                     to_device(own, backend.device), reserve)
