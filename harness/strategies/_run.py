"""Running a strategy over a dataset: requests from the items, the strategy, results in order.

Candidates that do not parse drop out before selection or weighting; an item with no valid
candidate is invalid, never filled in. One clip that cannot be read costs that item only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from harness.cache import GenerationCache
from harness.models.api import Decoding, ModelAPI, Request
from harness.strategies._config import StrategyConfig
from harness.strategies._results import ItemResult
from harness.strategies._strategy import RunContext, Strategy, StrategyUnsupported, get_strategy

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
    if s.needs_verifier and verifier is None:
        raise StrategyUnsupported(f"{s.name} needs a verifier model")


def load_requests(dataset: Dataset, prompt_for: Callable[..., str]
                  ) -> tuple[list[Request], dict[str, ItemResult], dict[str, list[str]]]:
    """Requests for the items whose audio loads, error results for the others, and what
    loading had to change (resampling, down-mixing) per item."""
    from harness.data import DataError

    requests, failed, notes = [], {}, {}
    for item in dataset:
        try:
            audio, notes[item.id] = item.read_audio()
        except DataError as exc:
            failed[item.id] = ItemResult(item.id, error=str(exc), reason="audio error")
            continue
        if not item.transcript.strip():  # the prompt's target utterance is then empty
            notes[item.id].append(f"{item.id}: no transcript; the prompt's target utterance is "
                                  "empty")
        requests.append(Request(audio, prompt_for(item), item.id))
    return requests, failed, notes


def run_strategy(strategy: str | Strategy, model: ModelAPI, dataset: Dataset, *,
                 config: StrategyConfig | None = None, cache: GenerationCache | None = None,
                 verifier: ModelAPI | None = None,
                 progress: Callable[[int], None] | None = None) -> list[ItemResult]:
    """Run ``strategy`` (a registered name or a :class:`Strategy`) over every item of
    ``dataset``; results come back in item order.

    ``progress(items generated)`` is called as the generation advances.

    Raises:
        StrategyUnsupported: the model (or a missing verifier) cannot run the strategy.
    """
    s = _strategy(strategy)
    config = config or StrategyConfig()
    check_supported(s, model, verifier)
    labels, corpus = dataset.labels, dataset.name
    requests, results, notes = load_requests(
        dataset, lambda item: s.prompt(corpus, item.transcript, labels, config.prompts))
    context = RunContext(dataset, config, cache, verifier, progress)
    for r, result in zip(requests, s.results(model, requests, context)):
        result.notes = notes[r.item_id] + result.notes
        results[r.item_id] = result
    return [results[item.id] for item in dataset]


def _strategy(strategy: str | Strategy) -> Strategy:
    return strategy if isinstance(strategy, Strategy) else get_strategy(strategy)
