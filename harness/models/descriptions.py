"""What each built-in local checkpoint will be once loaded, told without loading it: the
:class:`~harness.models.ModelInfo` its cache keys are made of (its revision, the dtype and
device it will load on, its backend's options), for :mod:`harness.models.deferred`.

Each function takes its model's factory's arguments and returns the info, or None where it
cannot be told without loading (the model is then loaded at once, as before). Finding the
checkpoint and reading the options are the factory's own steps, so a missing checkpoint or an
unknown option is refused here as it would be there. Nothing here imports torch (unless the
device is left to it) or transformers.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.models._hf_common import weights_revision
from harness.models.api import ModelInfo
from harness.models.fast_path import (
    AUDIO_FLAMINGO_3,
    QWEN2_5_OMNI_THINKER,
    QWEN2_AUDIO,
    ULTRAVOX,
    Architecture,
    fast_path_info,
)
from harness.models.qwen2_audio_models import TINY_DEFAULTS, tiny_checkpoint
from harness.models.registry import checkpoint


def _on_the_fast_path(name: str, architecture: Architecture):
    def describe(path: str | os.PathLike[str] | None = None, plain_generate: bool = False,
                 **options: object) -> ModelInfo | None:
        folder = checkpoint(name, path)
        if plain_generate:  # plain generate's backend: told only once loaded
            return None
        return fast_path_info(name, weights_revision(folder), architecture, **options)  # type: ignore[arg-type]

    return describe


qwen2_audio_7b = _on_the_fast_path("qwen2-audio-7b", QWEN2_AUDIO)
qwen2_5_omni_7b = _on_the_fast_path("qwen2.5-omni-7b", QWEN2_5_OMNI_THINKER)
audio_flamingo_3 = _on_the_fast_path("audio-flamingo-3", AUDIO_FLAMINGO_3)


def tiny_qwen2_audio(path: str | os.PathLike[str] | None = None, **options: object
                     ) -> ModelInfo | None:
    folder = tiny_checkpoint(path)
    return fast_path_info("tiny-qwen2-audio", weights_revision(folder), QWEN2_AUDIO,
                          **{**TINY_DEFAULTS, **options})  # type: ignore[arg-type]


def _ultravox(version: str):
    name = f"ultravox-v{version}"

    def describe(path: str | os.PathLike[str] | None = None, **options: object
                 ) -> ModelInfo | None:
        from harness.models._ultravox_model import UltravoxLayout

        layout = UltravoxLayout.read(Path(checkpoint(name, path)))
        return fast_path_info(name, layout.revision(), ULTRAVOX, **options)  # type: ignore[arg-type]

    return describe


ultravox_v0_3 = _ultravox("0.3")
ultravox_v0_4 = _ultravox("0.4")
