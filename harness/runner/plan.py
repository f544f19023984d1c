"""A model's plan over one corpus: every strategy a grid asks of it, a chunk of items at a time.

Each chunk's clips are read once for all the strategies; the strategies that read the same prompt
(``base``, ``bon``/``w-bon``, ``alm-v``/``w-alm-v``, ``sample-n``) have their decodings asked
together of a backend that can take them together (``generate_many(requests, decodings)``:
one prefill per clip for all of them), any other backend is asked one decoding at a time; then
each strategy's own pass (its verifier included) runs on the chunk. Everything goes through the
generation cache, keyed per decoding as always, and nothing else is kept: the strategies' cells
then run from the cache, with results identical to running each strategy alone (a test holds
them equal).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.cache import GenerationCache, generation_keys, put_generations
from harness.cache.isolation import RUN_LEVEL, check_count, generation_problem
from harness.data.problems import DataError
from harness.models.api import (
    Decoding,
    DecodingUnsupported,
    ModelAPI,
    ModelFailed,
    ModelNotLoaded,
    ModelUnavailable,
    Request,
)
from harness.models.deferred import work_clock
from harness.strategies import (
    RunContext,
    Strategy,
    StrategyConfig,
    StrategyUnsupported,
    check_supported,
    get_strategy,
)
from harness.strategies._stream import chunks

if TYPE_CHECKING:
    from harness.data import Dataset


@dataclass
class PlanReport:
    """What a plan did: seconds spent per strategy (its share of each chunk), the model calls it
    computed for each (those another strategy of the plan computed first are that one's, as a
    cell's reading of another cell's calls is), and the strategies it left out with the reason
    (their cells say it again when they run)."""

    seconds: dict[str, float] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)

    def add(self, strategy: str, seconds: float, computed: int) -> None:
        self.seconds[strategy] = self.seconds.get(strategy, 0.0) + seconds
        self.computed[strategy] = self.computed.get(strategy, 0) + computed


def run_plan(model: ModelAPI, dataset: Dataset, strategies: Sequence[str | Strategy], *,
             config: StrategyConfig, cache: GenerationCache, verifier: ModelAPI | None = None,
             progress: Callable[[int], None] | None = None) -> PlanReport:
    """Fill ``cache`` with what ``strategies`` need of ``model`` on ``dataset``, chunk by chunk
    (see the module's docstring); ``progress(items done)`` after each chunk."""
    report = PlanReport()
    runnable = []
    for s in (get_strategy(s) if isinstance(s, str) else s for s in strategies):
        try:
            check_supported(s, model, verifier)
            runnable.append(s)
        except StrategyUnsupported as exc:
            report.left_out[s.name] = str(exc)
    context = RunContext(dataset, config, cache, verifier)

    def prompted(s: Strategy, requests: Sequence[Request]) -> list[Request]:
        return [r.with_prompt(s.prompt(dataset.name, dataset.item_by_id(r.item_id).transcript,
                                       dataset.labels, config.prompts)) for r in requests]

    def needs_audio(requests: Sequence[Request]) -> list[bool]:
        need = [False] * len(requests)
        for s in runnable:
            keys = s.first_keys(model, prompted(s, requests), context)
            missing = cache.missing(keys)
            need = [n or key in missing for n, key in zip(need, keys)]
        return need

    done = 0
    for chunk in chunks(dataset, lambda item: "", needs_audio, cache):
        _together(model, runnable, chunk.requests, prompted, context, report)
        for s in list(runnable):
            start, misses = work_clock(model, verifier), cache.misses
            try:
                s.results(model, prompted(s, chunk.requests), context)
            except (StrategyUnsupported, DecodingUnsupported) as exc:
                runnable.remove(s)
                report.left_out[s.name] = str(exc)
            except (ModelUnavailable, ModelNotLoaded) as exc:  # a verifier of its own that
                if verifier is model or exc is not getattr(verifier, "failure", None):  # could
                    raise  # not be loaded leaves its strategies out, as one not found does
                runnable.remove(s)
                report.left_out[s.name] = f"its verifier: {exc}"
            report.add(s.name, work_clock(model, verifier) - start, cache.misses - misses)
        done += len(chunk.ids)
        del chunk  # its clips go before the next chunk is prepared
        if progress is not None:
            progress(done)
    return report


def _together(model: ModelAPI, runnable: list[Strategy], requests: Sequence[Request],
              prompted, context: RunContext, report: PlanReport) -> None:
    """Ask a backend with ``generate_many`` for each prompt's decodings at once, storing what
    the cache lacks; the seconds are shared out among the strategies asked."""
    generate_many = getattr(model, "generate_many", None)
    if generate_many is None or not requests:
        return
    groups: dict[str, list[Strategy]] = {}
    for s in runnable:
        if s.name != "readout":  # its first call is the label scores, not a generation
            template = s.prompt(context.dataset.name, "{transcript}", context.dataset.labels,
                                context.config.prompts)
            groups.setdefault(template, []).append(s)
    for group in groups.values():
        decodings = list(dict.fromkeys(s.decoding(context.config, context.dataset.labels)
                                       for s in group))
        if len(decodings) < 2:
            continue
        start = work_clock(model)
        computed = _generate_many(model, generate_many, prompted(group[0], requests), decodings,
                                  context.cache)
        share = (work_clock(model) - start) / len(group)
        for s in group:  # a decoding's calls are the first strategy's that asks for it
            report.add(s.name, share,
                       computed.pop(s.decoding(context.config, context.dataset.labels), 0))


def _generate_many(model: ModelAPI, generate_many, requests: Sequence[Request],
                   decodings: list[Decoding], cache: GenerationCache | None) -> dict[Decoding, int]:
    """The requests any decoding lacks, through ``generate_many``; only the missing entries
    are stored (an entry already cached is never replaced). Returns how many each decoding
    stored."""
    if cache is None:
        return {}
    keys = {d: generation_keys(model.info, requests, d) for d in decodings}
    missing = {d: cache.missing(k) for d, k in keys.items()}
    wanted, ready = [], []
    for i in range(len(requests)):
        if any(keys[d][i] in missing[d] for d in decodings):
            try:
                ready.append(requests[i].with_audio())
                wanted.append(i)
            except DataError:
                continue  # the strategies' own pass records the clip's error on its item
    if not wanted:
        return {}
    try:
        answers = [list(generations) for generations in generate_many(ready, decodings)]
    except RUN_LEVEL:
        raise
    except Exception as exc:  # the strategies' own passes ask again, item by item where needed
        warnings.warn(f"{model.info.name}: the shared prefill of {len(ready)} clips failed "
                      f"({type(exc).__name__}: {exc}); each strategy asks for its own decoding",
                      stacklevel=2)
        return {}
    if len(answers) != len(decodings):  # zip would drop a decoding's answers unsaid
        raise ModelFailed(f"{model.info.name}'s generate_many answered {len(answers)} decodings "
                          f"where {len(decodings)} were asked: no list of answers can be matched "
                          "to its decoding")
    stored = {}
    for d, generations in zip(decodings, answers):
        check_count(model.info.name, generations, len(wanted))
        entries = [(keys[d][i], g) for i, g in zip(wanted, generations)
                   if keys[d][i] in missing[d] and generation_problem(g) is None]
        put_generations(cache, model, entries)
        stored[d] = len(entries)
    return stored
