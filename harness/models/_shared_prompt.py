"""A clip's audio prefilled once for every prompt it is heard with; prompts that start alike
prefilled once up to where they part.

A prefill runs in stages. First each clip's chat text through its last audio placeholder (the
template's start, the audio) — the same whatever the prompt — is found among the clips heard
lately (harness.models._heard_clips), else the clip is encoded and that part prefilled once, and
kept for the prompts that follow (the grid asks each clip four times: the base prompt, chain of
thought, readout, the verifier). Then, where several requests of the batch hear the same clip
(the same array: the strategies and the cache hand a verifier's requests of one item the same
one), their prompts' longest common run of tokens runs once per clip. Last, each request's own
remaining tokens run after a copy of what precedes them. Each request's rows are positioned as
in its own prefill, so the logits equal it but for the last bits of the arithmetic (tested
within 1e-5 in float32; greedy answers equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.models._decode import Prefilled
from harness.models._heard_clips import Heard, HeardClips
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


def prefill_in_stages(backend, audios: Sequence[np.ndarray], prompts: Sequence[str], reserve: int,
                      keys: Sequence[str] | None = None) -> Prefilled | None:
    """The prefill of ``backend`` (a :class:`~harness.models.fast_audio_lm.FastAudioLM`) in the
    module's stages; ``keys``: the clips' content hashes, where what was heard of them is to be
    looked for and kept (``backend.heard``). None where there is nothing to share (no store,
    no clip repeated) or where a prompt changes the text before its audio: the ordinary prefill
    then runs."""
    heard: HeardClips | None = backend.heard if keys is not None else None
    owners, firsts = clip_owners(audios)
    repeats = backend.options.share_prompts and len(firsts) < len(audios)
    if heard is None and not repeats:
        return None
    clips, fresh = _heads(backend, [audios[i] for i in firsts], [prompts[i] for i in firsts],
                          None if keys is None else [f"{keys[i]}:{len(audios[i])}"
                                                     for i in firsts],
                          heard)  # the samples' count too: a wrong hash is not another clip's
    if clips is None:
        return None
    texts = backend.chat.after_prefix(prompts, [clips[o].pieces for o in owners])
    rows = backend.chat.rows(texts)
    if any(tuple(rows[i][:len(clips[o].row)]) != clips[o].row for i, o in enumerate(owners)):
        return None  # the prompt changes the text before the audio: nothing here applies
    tails = [rows[i][len(clips[o].row):] for i, o in enumerate(owners)]
    torch = backend._torch
    with torch.inference_mode():  # every clip heard just now: their prefill is the prefix
        prefix, seen = ((fresh[0], fresh[1]) if fresh is not None else _stacked(backend, clips))
        if repeats:
            prefix, seen, tails = _common_starts(backend, prefix, seen, tails, owners, firsts,
                                                 texts)
        if owners != list(range(len(owners))):
            index = to_device(np.asarray(owners), backend.device)
            prefix = [(k.index_select(0, index), v.index_select(0, index)) for k, v in prefix]
            seen = seen.index_select(0, index)
        ids, own = _ids(backend, tails, texts)
        return backend.prefill_after(prefix, seen, ids, own, reserve)


def _heads(backend, audios, prompts, keys, heard: HeardClips | None):
    """What was heard of each clip: kept, else encoded and prefilled now (and kept where the
    store has room); and, where every clip was heard now, that prefill's (keys and values per
    layer, mask), already the stacked prefix. (None, None) where a prompt's text holds no audio
    placeholder."""
    found: list[Heard | None] = (heard.find(keys) if heard is not None
                                 else [None] * len(audios))
    missing = [j for j, f in enumerate(found) if f is None]
    if not missing:
        return found, None
    heard_now = _hear(backend, [audios[j] for j in missing], [prompts[j] for j in missing])
    if heard_now is None:
        return None, None
    fresh, prefill = heard_now
    for j, h in zip(missing, fresh):
        found[j] = h
    if heard is not None:
        heard.keep([keys[j] for j in missing], fresh, found_none=len(missing) == len(audios))
    return found, prefill if len(missing) == len(audios) else None


def _hear(backend, audios, prompts):
    """The clips encoded and their chat text through the last audio placeholder prefilled:
    what is kept of each, and the prefill's (keys and values per layer, mask)."""
    audio, out_lens, pieces = backend.encode_clips(audios)
    per_clip, counts = backend._placeholders(pieces, out_lens.tolist())
    texts = backend.chat.after_prefix(prompts, per_clip)
    heads = []
    for row in backend.chat.rows(texts):
        at = [n for n, token in enumerate(row) if token == backend.audio_id]
        if not at:
            return None
        heads.append(row[:at[-1] + 1])
    state = backend.prefill_rows(audio, out_lens, heads, texts, per_clip, counts, reserve=0,
                                 pooled=False)
    width = state.attention_mask.shape[1]
    layers = [(layer.keys, layer.values) for layer in state.cache.layers]
    ends = np.cumsum(per_clip)
    heard = []
    for m, (head, k) in enumerate(zip(heads, per_clip)):
        mine = tuple(counts[ends[m] - k:ends[m]])
        n = len(head) - k + sum(mine)  # its tokens, the placeholders expanded: the row's last
        heard.append(Heard(tuple(head), k, mine, tuple(
            (keys[m, :, width - n:].transpose(0, 1).contiguous(),
             values[m, :, width - n:].transpose(0, 1).contiguous()) for keys, values in layers)))
    return heard, (layers, state.attention_mask)


def _stacked(backend, clips: Sequence[Heard]):
    """The clips' keys and values after the template's start, left-padded to the longest, one
    row per clip and (rows, heads, tokens, dim) per layer, and the mask of what is real."""
    torch = backend._torch
    start = backend._prefix_cache()
    shared = start[0][0].shape[2]
    width = shared + max(c.length for c in clips)
    mask = np.zeros((len(clips), width), dtype=np.int64)
    mask[:, :shared] = 1
    slots = []
    for g, c in enumerate(clips):
        mask[g, width - c.length:] = 1
        slots.append(np.arange(g * width + width - c.length, (g + 1) * width))
    where = to_device(np.concatenate(slots), backend.device)
    stacked = []
    for layer, (k0, v0) in enumerate(start):
        pair = []
        for part, first in ((0, k0), (1, v0)):
            flat = first.new_zeros((len(clips) * width, first.shape[1], first.shape[3]))
            flat.index_copy_(0, where, torch.cat([c.layers[layer][part] for c in clips]))
            rows = flat.view(len(clips), width, first.shape[1], first.shape[3])
            rows[:, :shared] = first[0].transpose(0, 1)
            pair.append(rows.transpose(1, 2))
        stacked.append((pair[0], pair[1]))
    return stacked, to_device(mask, backend.device)


def _common_starts(backend, prefix, seen, tails, owners, firsts, texts):
    """Each repeated clip's requests' common start run once on its row (after ``prefix``):
    the new prefix and mask, and what remains of each request's tail."""
    cuts = [common_length([t for t, o in zip(tails, owners) if o == g])
            if owners.count(g) > 1 else 0 for g in range(len(firsts))]
    if not any(cuts):
        return prefix, seen, tails
    ids, own = _ids(backend, [tails[f][:cut] for f, cut in zip(firsts, cuts)],
                    [texts[f] for f in firsts])
    state = backend.prefill_after(prefix, seen, ids, own, reserve=0, pooled=False)
    prefix = [(layer.keys, layer.values) for layer in state.cache.layers]
    return prefix, state.attention_mask, [t[cuts[o]:] for t, o in zip(tails, owners)]


def _ids(backend, rows, texts):
    """Rows of tokens without audio placeholders embedded on the device, left-padded, and the
    mask (a placeholder there is an error naming its prompt)."""
    ids, own = expand_placeholders(rows, texts, [0] * len(rows), [], backend.audio_id,
                                   backend.pad_id)
    return backend.embed(to_device(ids, backend.device)), to_device(own, backend.device)
