"""Running a strategy over a dataset: requests from the items, chunk by chunk, the strategy,
results in order.

Candidates that do not parse drop out before selection or weighting; an item with no valid
candidate is invalid, never filled in here (the runner scores it as a uniform guess where
``StrategyConfig.invalid`` asks). One clip that cannot be read costs that item only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.cache import GenerationCache
from harness.models.api import Decoding, ModelAPI, Request
from harness.strategies._config import StrategyConfig, as_config
from harness.strategies._results import ItemResult
from harness.strategies._strategy import RunContext, Strategy, StrategyUnsupported, get_strategy
from harness.strategies._stream import chunks

if TYPE_CHECKING:
    from harness.data import Dataset


def decoding_for(strategy: str | Strategy, config: StrategyConfig, labels: Sequence[str] = ()
                 ) -> Decoding:
    """The generation run a strategy needs (shared by bon/w-bon and by alm-v/w-alm-v)."""
    return _strategy(strategy).decoding(config, labels)


def check_supported(strategy: str | Strategy, model: ModelAPI, verifier: ModelAPI | None = None
                    ) -> None:
    """Raise StrategyUnsupported naming the missing capability (never a silent fallback)."""
    s = _strategy(strategy)
    caps = model.info.capabilities
    missing = [n for n in s.needs if not getattr(caps, n)]
    if missing:
        raise StrategyUnsupported(f"{model.info.name} has no {', '.join(missing)}: "
                                  f"{s.name} cannot run on it")
    if not s.needs_verifier:
        return
    if verifier is None:
        raise StrategyUnsupported(f"{s.name} needs a verifier model")
    if not callable(getattr(verifier, "generate", None)):
        raise StrategyUnsupported(f"{s.name}: the verifier {verifier.info.name} cannot score "
                                  "candidates (a chance baseline generates nothing); name a local "
                                  "or API model")


def run_strategy(strategy: str | Strategy, model: ModelAPI, dataset: Dataset, *,
                 config: StrategyConfig | Mapping[str, Any] | None = None,
                 cache: GenerationCache | None = None, verifier: ModelAPI | None = None,
                 progress: Callable[[int], None] | None = None) -> list[ItemResult]:
    """Run ``strategy`` (a registered name or a :class:`Strategy`) over every item of
    ``dataset``; results come back in item order.

    ``progress(items generated)`` is called as the generation advances.

    Raises:
        StrategyUnsupported: the model (or a missing verifier) cannot run the strategy.
    """
    return [result for chunk in iter_strategy(strategy, model, dataset, config=config, cache=cache,
                                               verifier=verifier, progress=progress)
            for result in chunk]


def iter_strategy(strategy: str | Strategy, model: ModelAPI, dataset: Dataset, *,
                  config: StrategyConfig | Mapping[str, Any] | None = None,
                  cache: GenerationCache | None = None, verifier: ModelAPI | None = None,
                  progress: Callable[[int], None] | None = None) -> Iterator[list[ItemResult]]:
    """:func:`run_strategy` a chunk at a time (item order): the caller can write and drop each
    chunk's results, so memory does not grow with the corpus. The next chunk's clips are read
    while the model works on this one (:mod:`harness.strategies._stream`)."""
    s = _strategy(strategy)
    config = as_config(config)
    check_supported(s, model, verifier)
    labels, corpus = dataset.labels, dataset.name
    context = RunContext(dataset, config, cache, verifier, None)

    def needs_audio(requests: Sequence[Request]) -> list[bool]:
        if cache is None:
            return [True] * len(requests)
        keys = s.first_keys(model, requests, context)
        missing = cache.missing(keys)
        return [key in missing for key in keys]

    done = 0
    for chunk in chunks(dataset, lambda item: s.prompt(corpus, item.transcript, labels,
                                                       config.prompts), needs_audio, cache):
        step = replace(context, progress=_offset(progress, done))
        results = dict(chunk.failed)
        for r, result in zip(chunk.requests, s.results(model, chunk.requests, step)):
            result.notes = chunk.notes[r.item_id] + result.notes
            results[r.item_id] = result
        done += len(chunk.ids)
        ids = chunk.ids
        del chunk, step  # its clips go before the next chunk is prepared
        yield [results[item_id] for item_id in ids]


def _offset(progress: Callable[[int], None] | None, before: int) -> Callable[[int], None] | None:
    """``progress`` told the items done before this chunk as well."""
    if progress is None:
        return None
    return lambda n: progress(before + n)


def _strategy(strategy: str | Strategy) -> Strategy:
    return strategy if isinstance(strategy, Strategy) else get_strategy(strategy)
