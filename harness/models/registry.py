"""Model registry: names to factories, imported only when a model is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from harness.models.api import ModelAPI

# name -> "module:attribute"; importing the module is deferred so optional backends cost nothing
_BUILTIN = {
    "qwen2-audio-7b": "harness.models.hf_qwen2_audio:qwen2_audio_7b",
    "tiny-qwen2-audio": "harness.models.hf_qwen2_audio:tiny_qwen2_audio",
    "qwen2.5-omni-7b": "harness.models.hf_generic:qwen2_5_omni_7b",
    "audio-flamingo-3": "harness.models.hf_generic:audio_flamingo_3",
    "audio-flamingo-2": "harness.models.af2_native:audio_flamingo_2",
    "ultravox-v0.3": "harness.models.hf_generic:ultravox_v0_3",
    "ultravox-v0.4": "harness.models.hf_generic:ultravox_v0_4",
    "gpt-4o": "harness.models.openai_api:gpt_4o",
    "gemini-2.0-flash": "harness.models.gemini_api:gemini_2_0_flash",
    "gemini-2.5-pro": "harness.models.gemini_api:gemini_2_5_pro",
}
_PREFIXES = {"openai-compatible:": "harness.models.openai_api:openai_compatible"}
_REGISTERED: dict[str, Callable[..., ModelAPI]] = {}


def register(name: str) -> Callable[[Callable[..., ModelAPI]], Callable[..., ModelAPI]]:
    """Decorator: make ``factory(**config)`` loadable as ``get_model(name)``."""

    def wrap(factory: Callable[..., ModelAPI]) -> Callable[..., ModelAPI]:
        _REGISTERED[name] = factory
        return factory

    return wrap


def model_names() -> list[str]:
    """Every registered model name (``openai-compatible:<model>`` takes any server model)."""
    return sorted({*_BUILTIN, *_REGISTERED, *(p + "<model>" for p in _PREFIXES)})


def get_model(name: str, **config: Any) -> ModelAPI:
    """Build the model ``name``; raises ModelUnavailable when it cannot run here."""
    if name in _REGISTERED:
        return _REGISTERED[name](**config)
    for prefix, target in _PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            module, attribute = target.split(":")
            factory = getattr(importlib.import_module(module), attribute)
            return factory(name[len(prefix):], **config)
    if name not in _BUILTIN:
        raise ValueError(f"unknown model {name!r}; registered: {model_names()}")
    module, attribute = _BUILTIN[name].split(":")
    return getattr(importlib.import_module(module), attribute)(**config)
