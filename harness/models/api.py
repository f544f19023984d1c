"""The protocol every model backend implements, and the values that cross it."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from harness._values import whole_number

DECODING_MODES = ("greedy", "beam", "sample")


class ModelUnavailable(RuntimeError):
    """The backend cannot run here (weights, package or key missing); the message says what to set."""


class ModelStopped(ModelUnavailable):
    """The model's run stops: the cell that met it fails with the message (which starts with
    the model's name), and the model's later cells skip unsent."""


class KeyRejected(ModelStopped):
    """The API refused the key (401/403): every later request of the model would fail the same
    way, so the model's run stops at once; the message names the variable to check."""


class SpendingCapReached(ModelStopped):
    """A paid API model's estimated spending in this process reached its cap
    (``max_cost_usd``): nothing more is sent; what was answered is cached."""


class ModelNotLoaded(RuntimeError):
    """The model is there but could not be loaded: damaged or incomplete weights, a config of
    another version, an argument it does not take. The message names the model (and its folder
    where known) and the cause; the grid fails each of the model's cells with it, loading the
    model once, not once a cell."""


class ModelFailed(RuntimeError):
    """The model itself is failing, not an item: it raised on the first several requests it was
    asked alone and answered nothing, or it answered a call with the wrong number of answers.
    The run stops; what was computed before is in the cache (:mod:`harness.cache.isolation`)."""


class DecodingUnsupported(RuntimeError):
    """The model (a server) cannot decode this way: beam search, several candidates, or
    log-probabilities where they are needed. Found by a probe (the first request of that kind),
    remembered, and raised before anything else is sent; the message names the model, what was
    asked and the server's own reason. The grid skips the cell with it."""


@dataclass(frozen=True)
class Decoding:
    """How to decode. ``num_candidates`` is the beam width (returned beams) or the sample count."""

    mode: str = "greedy"
    num_candidates: int = 1
    max_new_tokens: int = 96
    min_new_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    constrained: bool = False
    json_labels: tuple[str, ...] = ()  # the answer template's keys, when ``constrained``

    def __post_init__(self) -> None:
        if self.constrained and not self.json_labels:
            raise ValueError("constrained decoding needs json_labels (the answer's keys)")
        if self.mode not in DECODING_MODES:
            raise ValueError(f"mode must be one of {DECODING_MODES}, not {self.mode!r}")
        if self.mode == "greedy" and self.num_candidates != 1:
            raise ValueError("greedy decoding returns one candidate")
        for name in ("num_candidates", "max_new_tokens"):
            whole_number(name, getattr(self, name))
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError("need 0 <= min_new_tokens <= max_new_tokens")
        if not 0 < self.top_p <= 1:  # NaN fails too
            raise ValueError(f"top_p must be above 0 and at most 1, not {self.top_p!r}")
        if not 0 < self.temperature < math.inf:
            raise ValueError(f"temperature must be a finite number above 0, "
                             f"not {self.temperature!r}")

    def key(self) -> str:
        """A canonical string of every field, for cache keys."""
        return json.dumps(asdict(self), sort_keys=True)


NOT_LOADED = np.zeros(0, dtype=np.float32)  # a request's audio before it is read from its source


@dataclass(frozen=True, eq=False)
class Request:
    """One clip and one prompt. ``audio`` is 16 kHz mono float32.

    The runner builds requests whose audio is not read yet (``audio`` is :data:`NOT_LOADED`,
    ``source`` the clip's path, ``audio_hash`` stands for its content): the cache answers
    them without reading the clip, and a model only ever sees them after :meth:`with_audio`.
    """

    audio: np.ndarray
    prompt: str
    item_id: str = ""
    audio_hash: str = ""
    source: Path | None = None

    def __post_init__(self) -> None:
        if not self.loaded and not self.audio_hash:
            raise ValueError("a request whose audio is not loaded needs its audio_hash")
        if not self.audio_hash:
            digest = hashlib.sha256(np.ascontiguousarray(self.audio, dtype="<f4").tobytes())
            object.__setattr__(self, "audio_hash", digest.hexdigest())

    @property
    def loaded(self) -> bool:
        return self.source is None or self.audio.size > 0

    def with_audio(self) -> Request:
        """This request with its samples read from ``source`` when they are not loaded yet.

        Raises:
            AudioError: the clip cannot be read (it changed or went away since it was hashed).
        """
        if self.loaded:
            return self
        from harness.data.audio import read_audio

        assert self.source is not None
        return self.with_samples(read_audio(self.source)[0])

    def with_samples(self, audio: np.ndarray) -> Request:
        """This request with ``audio`` as its samples (the same clip, read)."""
        return type(self)(audio, self.prompt, self.item_id, self.audio_hash, self.source)

    def with_prompt(self, prompt: str) -> Request:
        """This request asking ``prompt`` of the same clip (a third of ``dataclasses.replace``'s
        cost: a verifier asks three of them per item)."""
        return type(self)(self.audio, prompt, self.item_id, self.audio_hash, self.source)

    @property
    def name(self) -> str:
        """How notes and errors name the request: its item id, else the start of its audio hash."""
        return self.item_id or self.audio_hash[:12]


@dataclass(frozen=True)
class Candidate:
    """One generated answer with its raw cumulative log-likelihood α (no length normalisation);
    α is NaN where the model returned none (a server without logprobs): such a candidate takes
    no part where α decides (bon, w-bon)."""

    text: str
    n_tokens: int
    logprob: float
    finite: bool = True  # False when NaN/inf logits were met: the candidate is then invalid


SERVED_BY_CHARS = 120  # a snapshot's name is short ("gpt-4o-audio-preview-2024-12-17")


@dataclass(frozen=True)
class Generation:
    """The candidates for one request, best first, or the reason there are none.

    ``usage`` is what a paid API reported: ``prompt_tokens``, ``completion_tokens`` and the
    estimated ``cost_usd`` (empty for local models). ``notes`` say what the backend changed
    about the request (a clip truncated to the audio window, heard in pieces). ``served_by``:
    the model that answered as the API named it in its answer (OpenAI's ``model``, Gemini's
    ``model_version``: a dated snapshot where the name asked for is an alias that moves), ""
    where the backend does not say (local models).
    """

    candidates: tuple[Candidate, ...] = ()
    error: str | None = None
    usage: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    served_by: str = ""


@dataclass(frozen=True)
class LabelScores:
    """One request's summed token log-probability of each full label as the answer, (K,), or
    NaN with the ``error`` that kept it from being scored; ``notes`` as in :class:`Generation`."""

    logprobs: np.ndarray
    error: str | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def failed(cls, width: int, reason: str) -> LabelScores:
        return cls(np.full(width, np.nan), reason)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; a strategy that needs more skips its cell and says why."""

    audio: bool = True
    logprobs: bool = True
    n_candidates: bool = True
    beam_search: bool = True
    label_logprobs: bool = True
    structured_output: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """What reports record about the model that produced a result."""

    name: str
    revision: str
    dtype: str = ""
    device: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)
    # what else in the backend can change an output: (name, value) pairs, e.g. its version and
    # long-audio policy; part of every cache key and of each cell's metadata
    options: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class ModelAPI(Protocol):
    """What the strategies call. Backends batch internally; one bad request never fails the rest.

    A backend may also offer ``generate_many(requests, decodings) -> list[list[Generation]]``
    (one list per decoding, each as ``generate`` gives it): the model's plan
    (harness.runner.plan) then asks for the decodings of one prompt together, so that a clip's
    prompt is prefilled once for all of them (the fast path's backends do). And a ``stopped``
    attribute, None or the :class:`ModelStopped` the backend met midway through a call (the API
    models' spending cap): it is raised once that call's answers are stored
    (:func:`raise_if_stopped`).
    """

    info: ModelInfo

    def generate(self, requests: Sequence[Request], decoding: Decoding) -> list[Generation]:
        """Candidates for each request, in request order."""
        ...

    def label_logprobs(self, requests: Sequence[Request], labels: Sequence[str]
                       ) -> list[LabelScores]:
        """Each request's label scores, in request order; a request that cannot be scored gets
        a row of NaN and the reason."""
        ...


def raise_if_stopped(model: object) -> None:
    """Raise the :class:`ModelStopped` a backend holds as ``stopped``, if any. Checked after
    each call's answers are stored, so that a model that stopped midway (its spending cap
    reached) fails its cell with nothing it answered lost, rather than let the cell be scored
    on the items it did answer."""
    stopped = getattr(model, "stopped", None)
    if isinstance(stopped, ModelStopped):
        raise stopped
