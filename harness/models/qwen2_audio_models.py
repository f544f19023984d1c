"""The Qwen2-Audio checkpoints the registry names, each run by :class:`Qwen2AudioBackend`
(imported when one is built: finding a checkpoint imports neither torch nor transformers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness._embedded import embedded_path
from harness._regular import not_a_folder
from harness.models.api import ModelUnavailable
from harness.models.registry import checkpoint

if TYPE_CHECKING:
    from harness.models.hf_qwen2_audio import Qwen2AudioBackend

# the embedded default runs on the CPU in float32 unless told otherwise
TINY_DEFAULTS = {"device": "cpu", "dtype": "float32"}


def qwen2_audio_7b(path: str | None = None, **options) -> Qwen2AudioBackend:
    """``qwen2-audio-7b``: ``$QWEN2_AUDIO_7B_PATH`` or the local Hugging Face cache."""
    from harness.models.hf_qwen2_audio import Qwen2AudioBackend

    return Qwen2AudioBackend.from_pretrained("qwen2-audio-7b", checkpoint("qwen2-audio-7b", path),
                                             **options)


def tiny_checkpoint(path: str | os.PathLike[str] | None = None) -> Path:
    """The tiny model's folder: ``path``, else ``$TINY_QWEN2_AUDIO_PATH`` (a copy to test
    against, e.g. a model update), else the embedded default model shipped inside the package
    (``harness/embedded/tiny_qwen2_audio``).

    Raises:
        ModelUnavailable: that is not a folder, saying why.
    """
    path = Path(path or os.environ.get("TINY_QWEN2_AUDIO_PATH")
                or embedded_path("tiny_qwen2_audio")).expanduser()
    why = not_a_folder(path)
    if why is not None:
        raise ModelUnavailable(f"tiny-qwen2-audio: {path}: {why} (TINY_QWEN2_AUDIO_PATH)")
    return path


def tiny_qwen2_audio(path: str | os.PathLike[str] | None = None, **options) -> Qwen2AudioBackend:
    """``tiny-qwen2-audio``: :func:`tiny_checkpoint`'s folder, on the CPU in float32 unless
    ``device`` or ``dtype`` say otherwise."""
    from harness.models.hf_qwen2_audio import Qwen2AudioBackend

    return Qwen2AudioBackend.from_pretrained("tiny-qwen2-audio", tiny_checkpoint(path),
                                             **{**TINY_DEFAULTS, **options})
