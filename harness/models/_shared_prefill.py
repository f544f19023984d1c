"""One prefill per clip for several decodings (``generate_many`` of the fast path).

Each batch is prefilled with the room the largest decoding needs; each decoding then runs from
its own fork of that cache (:func:`~harness.models._kv_layers.fork_cache`), one after the other;
or, with ``FastPathOptions.decode_together``, all of them in one loop
(:func:`~harness.models._decode.decode_searches`) from a cache with room for every clip's
sequences of all of them, the batch sized for those.
Each decoding's answers equal what ``generate`` gives for it alone over the same batches (tested),
sampling included: a sampling decoding draws from its own generator, seeded with its seed once
per call, as ``generate`` seeds one. The batch size is the one the most demanding decoding would
get, so on a GPU, where it follows free memory, the batches (and so the low bits of 16-bit
arithmetic) can differ from those of a decoding run alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.models._batch_sizes import run_batched
from harness.models._context import run_what_fits
from harness.models._decode import Prefilled, decode_searches, new_search
from harness.models._kv_layers import fork_cache
from harness.models.api import Decoding, Generation


@dataclass(frozen=True)
class _EachDecoding:
    """One clip's generations, one per decoding, and the notes the long-audio policy adds to
    each (:func:`~harness.models._long_audio.run_fitting` adds them to this)."""

    generations: tuple[Generation, ...]
    notes: tuple[str, ...] = ()


def generate_many(backend, requests, decodings: Sequence[Decoding]) -> list[list[Generation]]:
    """Each decoding's generations of ``requests`` on ``backend`` (a
    :class:`~harness.models.fast_audio_lm.FastAudioLM`), one list per decoding."""
    torch = backend._torch
    decodings = list(decodings)
    if not decodings:
        return []
    together = backend.options.decode_together and len(decodings) > 1
    reserve = (_together_reserve(backend, decodings) if together
               else max(backend.decode_reserve(d) for d in decodings))
    constraints = [backend.constraint(d.json_labels) if d.constrained else None
                   for d in decodings]
    generators = [torch.Generator(backend.device).manual_seed(d.seed)
                  if d.mode == "sample" else None for d in decodings]

    def run(chunk):
        state = backend.prefill([r.audio for r in chunk], [r.prompt for r in chunk],
                                reserve=reserve, keys=[r.audio_hash for r in chunk])
        answers = (_decode_together(backend, state, decodings, generators, constraints)
                   if together else [_decode_fork(backend, state, d, g, c)
                                     for d, g, c in zip(decodings, generators, constraints)])
        return [_EachDecoding(tuple(row)) for row in zip(*answers)]

    def refuse(_, reason):
        return _EachDecoding(tuple(Generation(error=reason) for _ in decodings))

    widest = (sum if together else max)(d.num_candidates for d in decodings)
    longest = max(d.max_new_tokens for d in decodings)
    with backend.pooled_decoding():
        rows = run_what_fits(
            backend, requests, longest,
            lambda fit: run_batched(backend, fit, run, widest, longest, refuse), refuse)
    return [[replace(row.generations[k], notes=(*row.generations[k].notes, *row.notes))
             for row in rows] for k in range(len(decodings))]


def _together_reserve(backend, decodings: Sequence[Decoding]) -> int:
    """Cache room past the prompt for decoding all of ``decodings`` in one loop: a slot of the
    longest answer for each of a clip's sequences of all of them (the static step's grouped
    cache), or room for one (the repeated cache of eager decoding)."""
    longest = max(d.max_new_tokens for d in decodings)
    per_clip = sum(d.num_candidates for d in decodings) if backend._static_decoding() else 1
    return longest * per_clip


def _decode_fork(backend, state: Prefilled, decoding: Decoding, generator, constraint
                 ) -> list[Generation]:
    """One decoding of a prefilled batch, from its own fork of the prompt's cache."""
    fork = fork_cache(state.cache, backend.lm.config, backend.decode_reserve(decoding))
    return _decoded(backend, lambda: [backend.decode(replace(state, cache=fork), decoding,
                                                     backend.decode_step(), generator,
                                                     constraint)])[0]


def _decode_together(backend, state: Prefilled, decodings, generators, constraints
                     ) -> list[list[Generation]]:
    """Every decoding of a prefilled batch in one loop, each clip's sequences side by side."""
    clips, vocab = state.logits.shape
    searches = [new_search(d, clips, vocab, backend.eos_ids, backend.pad_id, state.logits.device,
                           g, c) for d, g, c in zip(decodings, generators, constraints)]
    return _decoded(backend, lambda: decode_searches(backend.decode_step(), state, searches))


def _decoded(backend, decode) -> list[list[Generation]]:
    """``decode()``'s candidates (a list per decoding, of a list per clip) as generations; an
    out-of-memory error lets go of the pooled buffers first, and the batch's cache is let go
    of after."""
    try:
        decoded = decode()
    except backend._torch.cuda.OutOfMemoryError:
        backend._release_decoder()  # the smaller retry must not find the big buffers held
        raise
    finally:
        if backend._static_step is not None:
            backend._static_step.end()
    return [[backend._to_generation(d) for d in per_decoding] for per_decoding in decoded]
