"""A local model that loads its weights at its first model call; until then, its description.

A cell needs of its model only answers, and the generation cache keys them by the model's
:class:`~harness.models.ModelInfo` (its revision, dtype and backend options), which a built-in
checkpoint can tell without loading (:func:`~harness.models.registry.describe_model`). So a
cell whose answers are all in the cache never loads the model: a rerun after a change to the
parser, a strategy, a metric or the report, a resumed run's finished cells, a regression gate
of a prompt change on the corpora already run. The description is checked against the loaded
model's own info the moment it loads; a load that fails fails the cell that needed it, as a
failure at the start of the cell did, and every later call says it again without trying again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.models.api import (
    Decoding,
    Generation,
    LabelScores,
    ModelFailed,
    ModelInfo,
    ModelNotLoaded,
    ModelUnavailable,
    Request,
)


class DeferredModel:
    """A model known by ``info`` until a call needs it, then ``load()``; see the module.

    Args:
        info: What the loaded model's info will be (its device may differ in name only).
        load: Builds the model.
        explain: The message of a failure to load (:class:`ModelNotLoaded`'s), from its
            exception; by default its type, message and name.
    """

    def __init__(self, info: ModelInfo, load: Callable[[], Any],
                 explain: Callable[[Exception], str] | None = None) -> None:
        self.info = info
        self.load_seconds = 0.0  # spent loading: no cell's own time (see work_clock)
        self.failure: Exception | None = None
        self._load, self._explain = load, explain
        self._model: Any = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self) -> Any:
        """The loaded model (loaded now if need be).

        Raises:
            ModelUnavailable: it cannot run here (a package missing).
            ModelNotLoaded: it could not be loaded.
            ModelFailed: it loaded unlike its description.
        """
        if self._model is None:
            if self.failure is not None:
                raise self.failure
            start = time.perf_counter()
            try:
                self._model = self._checked(self._load())
            except Exception as exc:
                self.failure = self._failed(exc)
                raise self.failure from exc
            finally:
                self.load_seconds += time.perf_counter() - start
        return self._model

    def generate(self, requests: Sequence[Request], decoding: Decoding) -> list[Generation]:
        return self.model().generate(requests, decoding)

    def label_logprobs(self, requests: Sequence[Request], labels: Sequence[str]
                       ) -> list[LabelScores]:
        return self.model().label_logprobs(requests, labels)

    def generate_many(self, requests: Sequence[Request], decodings: Sequence[Decoding]
                      ) -> list[list[Generation]]:
        """The loaded model's ``generate_many``, or its ``generate`` once per decoding."""
        model = self.model()
        many = getattr(model, "generate_many", None)
        if many is not None:
            return many(requests, decodings)
        return [model.generate(requests, decoding) for decoding in decodings]

    def close(self) -> None:
        """Close the loaded model (:func:`close_model`); one never loaded stays so."""
        if self._model is not None:
            close_model(self._model)

    def __getattr__(self, name: str) -> Any:
        """Anything else a caller asks of the backend (its options, its batch sizes): loaded."""
        if name.startswith("_") or name in ("info", "failure", "load_seconds"):
            raise AttributeError(name)
        return getattr(self.model(), name)

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "failed" if self.failure else "not loaded yet"
        return f"<DeferredModel {self.info.name} ({state})>"

    def _checked(self, model: Any) -> Any:
        """The loaded model, its info adopted where only the device's name differs."""
        real = model.info
        if dataclasses.replace(real, device=self.info.device) != self.info:
            differ = [f"{f.name} {getattr(self.info, f.name)!r} -> {getattr(real, f.name)!r}"
                      for f in dataclasses.fields(real)
                      if getattr(real, f.name) != getattr(self.info, f.name)]
            raise ModelFailed(f"{self.info.name} loaded unlike its description ("
                              f"{'; '.join(differ)}): its answers would be cached under keys "
                              "not its own; load it at once (HARNESS_DEFER_LOADING=0) and report "
                              "this")
        self.info = real
        return model

    def _failed(self, exc: Exception) -> Exception:
        """What every call says from now on: unavailable stays so, anything else is a model
        that could not be loaded."""
        if isinstance(exc, (ModelUnavailable, ModelNotLoaded, ModelFailed)):
            return exc
        if isinstance(exc, ImportError):
            return ModelUnavailable(f"{self.info.name}: {exc}")
        if self._explain is not None:
            return ModelNotLoaded(self._explain(exc))
        return ModelNotLoaded(f"{self.info.name} could not be loaded: {type(exc).__name__}: "
                              f"{str(exc)[:300]}")


def close_model(model: Any) -> None:
    """Let go of what ``model`` holds open (an API model's HTTP connections) where it has a
    ``close`` of its own (looked up on its class: a wrapper's ``__getattr__`` would load what it
    wraps); a local model has none (its memory goes with it)."""
    if callable(getattr(type(model), "close", None)):
        model.close()


def deferred_model(name: str, config: Mapping[str, Any] | None = None,
                   explain: Callable[[Exception], str] | None = None,
                   prepare: Callable[[], None] | None = None) -> Any:
    """``get_model(name, **config)``, loaded at its first model call where its registry entry
    can describe it (:class:`DeferredModel`; ``prepare()`` first, then), else at once;
    ``HARNESS_DEFER_LOADING=0`` loads every model at once.

    Raises:
        ModelUnavailable, ValueError, TypeError: as :func:`~harness.models.get_model` would,
            for what the description checks (the checkpoint found, the options known);
            ValueError too for ``HARNESS_DEFER_LOADING`` set to neither true nor false.
    """
    from harness._env import env_flag
    from harness.models.registry import describe_model, get_model

    config = dict(config or {})
    if not env_flag("HARNESS_DEFER_LOADING", True):
        return get_model(name, **config)
    info = describe_model(name, **config)
    if info is None:
        return get_model(name, **config)

    def load() -> Any:
        if prepare is not None:
            prepare()
        return get_model(name, **config)

    return DeferredModel(info, load, explain)


def work_clock(*models: Any) -> float:
    """``time.perf_counter()`` less the seconds ``models`` (those deferred) have spent loading:
    the difference of two readings is the time between them spent on anything else, so that a
    cell's seconds never hold the loading of the model it happened to be the first to need."""
    return time.perf_counter() - sum(m.load_seconds for m in models if isinstance(m, DeferredModel))
