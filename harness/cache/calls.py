"""The model calls through the cache: the keys (what determines an answer), ``generate`` and
``label_logprobs`` asking the model only for what the cache lacks, chunk by chunk (a request
that makes the model raise costs its own item: :mod:`harness.cache.isolation`), and the rows as
stored (JSON, never pickles).

So ``bon`` and ``w-bon`` share one beam run, ``alm-v`` and ``w-alm-v`` one B=3 run, and a killed
run resumes without recomputing finished items. A request whose audio is not read yet (the
runner's) is read only when the cache lacks its answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

from harness._env import positive_int
from harness.cache.isolation import generation_problem, isolated, label_scores_problem
from harness.cache.store import GenerationCache, sha256
from harness.models.api import (
    SERVED_BY_CHARS,
    Candidate,
    Decoding,
    Generation,
    LabelScores,
    ModelAPI,
    ModelInfo,
    Request,
    raise_if_stopped,
)


def _model_key(info: ModelInfo) -> list[str]:
    """The model's part of a key: name, weights, dtype and every backend option that can change
    an output (the backend's version, the long-audio policy, kernels)."""
    return [info.name, info.revision, info.dtype, json.dumps(sorted(info.options))]


def generation_key(info: ModelInfo, request: Request, decoding: Decoding) -> str:
    """What determines a generation: model (weights, dtype, options), prompt, audio content,
    decoding and seed."""
    return generation_keys(info, [request], decoding)[0]


def generation_keys(info: ModelInfo, requests: Sequence[Request], decoding: Decoding) -> list[str]:
    """:func:`generation_key` of each request (the model's and the decoding's parts made once)."""
    fixed = "\n".join(["generation", *_model_key(info)])
    tail = decoding.key()
    return [sha256(f"{fixed}\n{sha256(r.prompt)}\n{r.audio_hash}\n{tail}") for r in requests]


def labels_key(info: ModelInfo, request: Request, labels: Sequence[str]) -> str:
    return labels_keys(info, [request], labels)[0]


def labels_keys(info: ModelInfo, requests: Sequence[Request], labels: Sequence[str]) -> list[str]:
    """:func:`labels_key` of each request (the fixed parts made once)."""
    fixed = "\n".join(["labels", *_model_key(info)])
    tail = json.dumps(list(labels))
    return [sha256(f"{fixed}\n{sha256(r.prompt)}\n{r.audio_hash}\n{tail}") for r in requests]


CHUNK = 256  # requests per model call: each chunk is stored before the next one starts


def cached_generate(model: ModelAPI, requests: Sequence[Request], decoding: Decoding,
                    cache: GenerationCache | None, chunk: int = CHUNK,
                    progress: Callable[[int], None] | None = None) -> list[Generation]:
    """``model.generate`` through the cache: only missing requests reach the model.

    Results are stored chunk by chunk, so a run killed mid-way loses at most one chunk, and
    ``progress(items done)`` is told after each. Failed generations are not stored, so a rerun
    tries them again.
    """
    if cache is None:
        cache = GenerationCache()  # in memory: the same chunking and progress, nothing kept
    chunk = positive_int("HARNESS_CACHE_CHUNK", chunk)
    keys = generation_keys(model.info, requests, decoding)
    found = cache.get_many(keys, _decode)
    missing = [i for i, k in enumerate(keys) if k not in found]
    out: dict[str, Generation] = {}
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        fresh = _generate_read(model, [requests[i] for i in part], decoding)
        put_generations(cache, model, [(keys[i], g) for i, g in zip(part, fresh)])
        raise_if_stopped(model)  # stopped midway (a spending cap): its answers are stored
        out.update((keys[i], g) for i, g in zip(part, fresh))
        if progress is not None:
            progress(len(keys) - len(missing) + start + len(part))
    answers = [out[k] if k in out else found[k] for k in keys]
    cache.served.update((model.info.name, g.served_by) for g in answers if g.served_by)
    return answers


def put_generations(cache: GenerationCache, model: ModelAPI,
                    pairs: Iterable[tuple[str, Generation]]) -> bool:
    """Store generations under their keys; failed ones are not stored (a rerun tries them
    again). False when the cache could not store them (see :meth:`GenerationCache.put_many`)."""
    return cache.put_many("generation", model.info.name,
                          [(key, _encode(g)) for key, g in pairs if g.error is None])


def cached_label_logprobs(model: ModelAPI, requests: Sequence[Request], labels: Sequence[str],
                          cache: GenerationCache | None,
                          progress: Callable[[int], None] | None = None) -> list[LabelScores]:
    """``model.label_logprobs`` through the cache; failed rows (an error, or NaN) are not stored;
    ``progress(items done)`` once they are all scored, as :func:`cached_generate` tells it."""
    import numpy as np

    if cache is None:
        scored = _label_logprobs_read(model, requests, labels)
        raise_if_stopped(model)
        if progress is not None:
            progress(len(requests))
        return scored
    keys = labels_keys(model.info, requests, labels)
    found = cache.get_many(keys, lambda value: _decode_scores(value, len(labels)))
    missing = [i for i, k in enumerate(keys) if k not in found]
    fresh = _label_logprobs_read(model, [requests[i] for i in missing], labels) if missing else []
    cache.put_many("labels", model.info.name,
                   [(keys[i], _encode_scores(row)) for i, row in zip(missing, fresh)
                    if row.error is None and np.isfinite(row.logprobs).all()])
    raise_if_stopped(model)  # stopped midway: its scores are stored
    rows = {keys[i]: row for i, row in zip(missing, fresh)}
    if progress is not None:
        progress(len(keys))
    return [rows[k] if k in rows else found[k] for k in keys]


def _read(requests: Sequence[Request]) -> tuple[list[tuple[int, Request]], dict[int, str]]:
    """The requests with their audio read where it was not yet (by position), and why each one
    whose clip could not be read failed. A clip asked for by several requests (a verifier's
    candidates of one item) is read once, and they share its samples: a backend then hears it
    once (harness.models._shared_prompt)."""
    from harness.data import DataError

    ready, failed = [], {}
    read: dict = {}  # source -> the request read first from it, or the reason it could not be
    for i, r in enumerate(requests):
        if r.loaded:
            ready.append((i, r))
            continue
        if r.source not in read:
            try:
                read[r.source] = r.with_audio()
            except DataError as exc:
                read[r.source] = f"audio error: {exc}"
        done = read[r.source]
        if isinstance(done, str):
            failed[i] = done
        else:
            ready.append((i, r.with_samples(done.audio)))
    return ready, failed


def _generate_read(model: ModelAPI, requests: Sequence[Request], decoding: Decoding
                   ) -> list[Generation]:
    """``model.generate`` on the requests with their audio read; a clip that cannot be read
    costs its own request (an error generation), never the others."""
    ready, failed = _read(requests)
    fresh = iter(isolated(lambda rs: model.generate(rs, decoding), [r for _, r in ready],
                          lambda why: Generation(error=why), generation_problem,
                          model.info.name) if ready else [])
    return [Generation(error=failed[i]) if i in failed else next(fresh)
            for i in range(len(requests))]


def _label_logprobs_read(model: ModelAPI, requests: Sequence[Request], labels: Sequence[str]
                         ) -> list[LabelScores]:
    """``model.label_logprobs`` as :func:`_generate_read` does ``generate``."""
    ready, failed = _read(requests)
    fresh = iter(isolated(lambda rs: model.label_logprobs(rs, labels), [r for _, r in ready],
                          lambda why: LabelScores.failed(len(labels), why),
                          label_scores_problem(len(labels)), model.info.name) if ready else [])
    return [LabelScores.failed(len(labels), failed[i]) if i in failed else next(fresh)
            for i in range(len(requests))]


def _encode(generation: Generation) -> dict:
    out = {"candidates": [{"text": c.text, "n_tokens": c.n_tokens, "logprob": c.logprob,
                           "finite": c.finite} for c in generation.candidates],
           "usage": generation.usage}  # Candidate's fields (asdict deep-copies: 10x slower)
    if generation.notes:
        out["notes"] = list(generation.notes)
    if generation.served_by:
        out["served_by"] = generation.served_by
    return out


def _decode(value: dict) -> Generation:
    """A stored generation; raises (TypeError, KeyError, ValueError) on a row of another shape,
    held to what a model's answer is held to before it is stored (a token count or α of another
    type sank the whole cell), its usage's counts and cost numbers or null."""
    if type(value["candidates"]) is not list:
        raise ValueError("its candidates are not a list")
    generation = Generation(tuple(Candidate(**c) for c in value["candidates"]), usage=value["usage"],
                            notes=tuple(value.get("notes", ())),
                            served_by=value.get("served_by", ""))
    if not (all(type(c.text) is str and type(c.n_tokens) is int and type(c.logprob) in _NUMBER
                and type(c.finite) is bool for c in generation.candidates)
            and type(generation.usage) is dict
            and all(v is None or type(v) in _NUMBER for v in generation.usage.values())
            and all(type(note) is str for note in generation.notes)
            and type(generation.served_by) is str and len(generation.served_by) <= SERVED_BY_CHARS):
        # types compared exactly, as JSON decodes them (a quarter of the cost); then said in full
        raise ValueError(generation_problem(generation)
                         or "a candidate's 'finite' is not true or false, or its usage not numbers")
    return generation


_NUMBER = (int, float)  # what JSON decodes a number to


def _encode_scores(row: LabelScores) -> list | dict:
    """A row of label scores as stored: the plain list, or with its notes when it has some."""
    values = [float(v) for v in row.logprobs]
    return {"logprobs": values, "notes": list(row.notes)} if row.notes else values


def _decode_scores(value: list | dict, width: int) -> LabelScores:
    """A stored row of label scores; raises (ValueError, KeyError, TypeError) on another shape."""
    import numpy as np

    notes = tuple(value.get("notes", ())) if isinstance(value, dict) else ()
    row = np.asarray(value["logprobs"] if isinstance(value, dict) else value, dtype=np.float64)
    if row.shape != (width,):
        raise ValueError(f"a row of {row.shape} scores for {width} labels")
    return LabelScores(row, None, notes)
