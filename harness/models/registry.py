"""Model registry: names to factories, imported only when a model is asked for, with each
model's kind (``local``, ``api`` or ``chance``) and whether it needs a GPU."""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["local", "api", "chance"]


@dataclass(frozen=True)
class ModelEntry:
    """How to build a model and what it is: ``target`` is a factory or ``"module:attribute"``
    (importing the module is deferred, so optional backends cost nothing)."""

    target: str | Callable[..., Any]
    kind: Kind = "local"
    gpu: bool = False  # a full-size local model: the grid marks its cells gpu and slow
    # a local checkpoint's environment variable and Hugging Face hub id: get_model looks for it
    # before importing the backend (and torch and transformers with it), so that a model whose
    # weights are not here is refused in milliseconds, not after seconds of imports
    weights: tuple[str, str] | None = None
    # what the factory's model will be (its ModelInfo) for the same arguments, told without
    # loading it, or None where it cannot tell: the grid then loads the model only when a cell
    # needs an answer the cache lacks (harness.models.deferred)
    describe: str | Callable[..., Any] | None = None

    def factory(self) -> Callable[..., Any]:
        return _resolved(self.target)

    def describer(self) -> Callable[..., Any] | None:
        return None if self.describe is None else _resolved(self.describe)


def _resolved(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable, or ``"module:attribute"`` imported."""
    if callable(target):
        return target
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


_DESCRIBED = "harness.models.descriptions:"


_ENTRIES: dict[str, ModelEntry] = {
    "qwen2-audio-7b": ModelEntry("harness.models.qwen2_audio_models:qwen2_audio_7b", gpu=True,
                                 weights=("QWEN2_AUDIO_7B_PATH", "Qwen/Qwen2-Audio-7B-Instruct"),
                                 describe=_DESCRIBED + "qwen2_audio_7b"),
    "tiny-qwen2-audio": ModelEntry("harness.models.qwen2_audio_models:tiny_qwen2_audio",
                                   describe=_DESCRIBED + "tiny_qwen2_audio"),
    "qwen2.5-omni-7b": ModelEntry("harness.models.hf_qwen2_5_omni:qwen2_5_omni_7b", gpu=True,
                                  weights=("QWEN2_5_OMNI_7B_PATH", "Qwen/Qwen2.5-Omni-7B"),
                                  describe=_DESCRIBED + "qwen2_5_omni_7b"),
    "audio-flamingo-3": ModelEntry("harness.models.hf_audio_flamingo_3:audio_flamingo_3", gpu=True,
                                   weights=("AUDIO_FLAMINGO_3_PATH", "nvidia/audio-flamingo-3-hf"),
                                   describe=_DESCRIBED + "audio_flamingo_3"),
    # its factory asks for NVIDIA's code first, and imports nothing heavy before it has both
    "audio-flamingo-2": ModelEntry("harness.models.af2_native:audio_flamingo_2", gpu=True),
    "ultravox-v0.3": ModelEntry("harness.models.hf_ultravox:ultravox_v0_3", gpu=True,
                                weights=("ULTRAVOX_V0_3_PATH", "fixie-ai/ultravox-v0_3"),
                                describe=_DESCRIBED + "ultravox_v0_3"),
    "ultravox-v0.4": ModelEntry("harness.models.hf_ultravox:ultravox_v0_4", gpu=True,
                                weights=("ULTRAVOX_V0_4_PATH", "fixie-ai/ultravox-v0_4"),
                                describe=_DESCRIBED + "ultravox_v0_4"),
    "gpt-4o": ModelEntry("harness.models.openai_api:gpt_4o", "api"),
    "gemini-2.0-flash": ModelEntry("harness.models.gemini_api:gemini_2_0_flash", "api"),
    "gemini-2.5-pro": ModelEntry("harness.models.gemini_api:gemini_2_5_pro", "api"),
    "uniform": ModelEntry("harness.baselines:uniform_baseline", "chance"),
    "label-prior": ModelEntry("harness.baselines:label_prior_baseline", "chance"),
    "annotator": ModelEntry("harness.baselines:annotator_baseline", "chance"),
}
_BUILT_IN = frozenset(_ENTRIES)
# a prefix takes any model name after it: the factory gets that name first
_PREFIXES = {"openai-compatible:": ModelEntry("harness.models.openai_api:openai_compatible", "api")}


def register(name: str, kind: Kind = "local", gpu: bool = False,
             weights: tuple[str, str] | None = None,
             describe: Callable[..., Any] | None = None
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``factory(**config)`` loadable as ``get_model(name)``; ``weights``: the
    checkpoint's environment variable and hub id (:func:`checkpoint`), looked for first;
    ``describe(**config)``: the :class:`~harness.models.ModelInfo` the factory's model will have,
    told without loading it (or None), so that the grid loads it only when a cell needs an
    answer the cache lacks (:func:`describe_model`). A name of one's own may be registered
    again (a notebook's cell run twice).

    Raises:
        ValueError: ``name`` is a built-in model's, whose records, baselines and snapshots say
            what produced them (its options are ``--model-arg NAME.OPTION=VALUE``).
    """
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is a built-in model; register yours under another name (the "
                         f"built-in one takes its options as --model-arg {name}.OPTION=VALUE)")

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        _ENTRIES[name] = ModelEntry(factory, kind, gpu, weights, describe)
        return factory

    return wrap


def register_checkpoint(name: str, like: str, weights: tuple[str, str]) -> None:
    """Make ``get_model(name)`` a checkpoint of a built-in local model's architecture (a
    fine-tune of ``like``), run by ``like``'s backend, with its options, on ``name``'s own
    weights, and named ``name`` in cells, records, baselines and the cache.

    Args:
        name: The checkpoint's own name.
        like: The built-in local model whose architecture it has (``"qwen2-audio-7b"``).
        weights: Its environment variable and Hugging Face hub id, looked for as a built-in's
            are (a ``path`` model argument first).

    Raises:
        ValueError: ``name`` is a built-in's, or ``like`` names no built-in local model.
    """
    base = _ENTRIES.get(like)
    if like not in _BUILT_IN or base is None or base.kind != "local":
        local = sorted(n for n in _BUILT_IN if _ENTRIES[n].kind == "local")
        raise ValueError(f"{name}: like={like!r} is not a built-in local model (one of {local})")

    def factory(path: str | os.PathLike[str] | None = None, **config: Any) -> Any:
        from harness.models.api import ModelNotLoaded, ModelUnavailable

        try:
            model = base.factory()(path=str(checkpoint(name, path)), **config)
        except (ModelNotLoaded, ModelUnavailable) as exc:  # the message named the built-in
            raise type(exc)(f"{name} (a {like} checkpoint): {exc}") from exc
        model.info = dataclasses.replace(model.info, name=name)
        return model

    def describe(path: str | os.PathLike[str] | None = None, **config: Any) -> Any:
        described = base.describer()
        info = None if described is None else described(path=str(checkpoint(name, path)), **config)
        return None if info is None else dataclasses.replace(info, name=name)

    register(name, "local", base.gpu, weights, describe)(factory)


def model_names() -> list[str]:
    """Every registered model name (``openai-compatible:<model>`` takes any server model)."""
    return sorted({*_ENTRIES, *(p + "<model>" for p in _PREFIXES)})


def model_entry(name: str) -> ModelEntry:
    """The registry's entry for ``name``.

    Raises:
        ValueError: no model has that name (the message lists those that do).
    """
    if name in _ENTRIES:
        return _ENTRIES[name]
    for prefix, entry in _PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return entry
    raise ValueError(f"unknown model {name!r}; registered: {model_names()}")


def model_kind(name: str) -> Kind:
    """``local``, ``api`` or ``chance``."""
    return model_entry(name).kind


def checkpoint(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint folder of the registered local model ``name``: ``path``, else the
    environment variable its entry names, else the local Hugging Face cache of its hub id.

    Raises:
        ModelUnavailable: none of the three, naming the variable to set.
    """
    from harness.models._hf_common import local_weights

    weights = model_entry(name).weights
    if weights is None:
        raise ValueError(f"{name}: its registry entry names no checkpoint")
    return local_weights(name, *weights, path)


def describe_model(name: str, **config: Any) -> Any:
    """The :class:`~harness.models.ModelInfo` ``get_model(name, **config)`` will have, told
    without loading the model (its weights, torch, transformers), or None where its entry
    cannot tell it (an API model, a chance baseline, a factory of one's own without
    ``describe``, a backend's choice made only when loading).

    Raises:
        ModelUnavailable: its checkpoint is not here, as get_model would raise it.
        ValueError, TypeError: an argument the model does not take, as loading would.
    """
    entry = model_entry(name)
    describe = entry.describer()
    if describe is None:
        return None
    if entry.weights is not None:
        checkpoint(name, config.get("path"))
    try:
        return describe(**config)
    except ImportError:  # a part of the description's not installed: loading will say it
        return None


def get_model(name: str, **config: Any) -> Any:
    """Build the model ``name`` (a :class:`~harness.models.ModelAPI`, or a chance baseline);
    raises ModelUnavailable when it cannot run here."""
    entry = model_entry(name)
    if entry.weights is not None:
        checkpoint(name, config.get("path"))  # before the backend's imports
    for prefix, prefixed in _PREFIXES.items():
        if entry is prefixed:
            return entry.factory()(name[len(prefix):], **config)
    return entry.factory()(**config)
