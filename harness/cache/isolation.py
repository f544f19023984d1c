"""A model call that raises costs the requests that make it raise, not its chunk.

The call is asked again on each half of its requests, down to single requests, so a clip that
breaks a backend (a shape it cannot take, a decoding that overflows) becomes that item's error,
naming the exception, and the other items get their answers. At most 2n-1 calls for n requests;
where the first :data:`IN_A_ROW` requests asked alone all fail before the model has answered any
call of the chunk, the model is failing, not the items (broken weights, a backend's bug, a lost
device), and the run stops with :class:`~harness.models.ModelFailed` (the traceback of the last
failure chained) after a handful of calls: what earlier chunks computed is in the cache. An
exception that concerns the run (the model or its key unavailable, a decoding or capability it
lacks, a model that could not be loaded at its first call) stops it at once, as before.

Answers are checked where they cross into the harness: the wrong number of answers is refused
naming the model (no answer can be matched to its request); an answer of the wrong shape (a
candidate whose text is not a string, a token count that is not an integer) becomes its item's
error instead of failing later, in the parser or the cache.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from harness.models.api import (
    SERVED_BY_CHARS,
    Candidate,
    DecodingUnsupported,
    Generation,
    LabelScores,
    ModelFailed,
    ModelNotLoaded,
    ModelUnavailable,
    Request,
)

# what concerns the run, not an item: raised at once, never split (a model loaded at its first
# call that could not be, harness.models.deferred, included)
RUN_LEVEL = (ModelUnavailable, ModelNotLoaded, DecodingUnsupported, ModelFailed,
             NotImplementedError)
IN_A_ROW = 4  # requests failing alone before any answer in the chunk that stop the run
MESSAGE_CHARS = 500

T = TypeVar("T")


def isolated(call: Callable[[list[Request]], Sequence[T]], requests: Sequence[Request],
             failed: Callable[[str], T], malformed: Callable[[Any], str | None],
             model: str) -> list[T]:
    """``call(requests)``, with the requests that make it raise answered by ``failed(reason)``
    (see the module's docstring); ``malformed(answer)`` says what is wrong with an answer, or
    None."""
    return _Splitter(call, failed, malformed, model).answers(list(requests))


class _Splitter:
    def __init__(self, call, failed, malformed, model: str) -> None:
        self.call, self.failed, self.malformed, self.model = call, failed, malformed, model
        self.failing, self.answered = 0, False  # requests that failed alone; any call answered

    def answers(self, requests: list[Request]) -> list:
        try:
            got = list(self.call(requests))
        except RUN_LEVEL:
            raise
        except Exception as exc:
            if len(requests) > 1:
                half = len(requests) // 2
                return self.answers(requests[:half]) + self.answers(requests[half:])
            return [self._alone_failed(exc)]
        check_count(self.model, got, len(requests))
        self.answered = True
        return [self._checked(answer) for answer in got]

    def _alone_failed(self, exc: Exception):
        self.failing += 1
        reason = f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS]
        if self.failing >= IN_A_ROW and not self.answered:
            raise ModelFailed(f"{self.model} failed on the first {self.failing} requests asked "
                              f"alone and answered nothing: the model is failing, not the items; "
                              f"the last: {reason}") from exc
        return self.failed(f"the model failed on this item (asked alone): {reason}")

    def _checked(self, answer):
        why = self.malformed(answer)
        return answer if why is None else self.failed(f"{self.model} answered malformed: {why}")


def check_count(model: str, answers: Sequence[Any], asked: int) -> None:
    """Raise :class:`~harness.models.ModelFailed` unless there is one answer per request."""
    if len(answers) != asked:
        raise ModelFailed(f"{model} returned {len(answers)} answers for {asked} requests: no "
                          "answer can be matched to its request")


def generation_problem(answer: Any) -> str | None:
    """What breaks the :class:`~harness.models.Generation` interface in ``answer``, or None."""
    if not isinstance(answer, Generation):
        return f"a {type(answer).__name__}, not a Generation"
    if answer.error is not None and not isinstance(answer.error, str):
        return "its error is not a string"
    if not isinstance(answer.usage, dict) or not all(isinstance(n, str) for n in answer.notes):
        return "its usage is not a dict or a note is not a string"
    if not isinstance(answer.served_by, str) or len(answer.served_by) > SERVED_BY_CHARS:
        return f"its served_by is not a string of at most {SERVED_BY_CHARS} characters"
    for n, candidate in enumerate(answer.candidates):
        why = _candidate_problem(candidate)
        if why is not None:
            return f"candidate {n}: {why}"
    return None


def _candidate_problem(candidate: Any) -> str | None:
    if not isinstance(candidate, Candidate):
        return f"a {type(candidate).__name__}, not a Candidate"
    if not isinstance(candidate.text, str):
        return f"its text is a {type(candidate.text).__name__}"
    n_tokens, logprob = candidate.n_tokens, candidate.logprob
    # a plain int and float first: the abstract classes' checks cost a microsecond each
    if type(n_tokens) is not int and (not isinstance(n_tokens, numbers.Integral)
                                      or isinstance(n_tokens, bool)):
        return f"its token count is a {type(n_tokens).__name__}"
    if type(logprob) is not float and (not isinstance(logprob, numbers.Real)
                                       or isinstance(logprob, bool)):
        return f"its log-likelihood is a {type(logprob).__name__}"
    return None


def label_scores_problem(width: int) -> Callable[[Any], str | None]:
    """What breaks the :class:`~harness.models.LabelScores` interface in an answer for
    ``width`` labels, or None."""
    def problem(answer: Any) -> str | None:
        if not isinstance(answer, LabelScores):
            return f"a {type(answer).__name__}, not LabelScores"
        shape = getattr(answer.logprobs, "shape", None)
        if shape != (width,):
            return f"{shape} label scores for {width} labels"
        return None

    return problem
