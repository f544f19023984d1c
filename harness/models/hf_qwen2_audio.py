"""Qwen2-Audio on the fast path (:class:`~harness.models.fast_audio_lm.FastAudioLM`)."""

from __future__ import annotations

from harness.models.fast_audio_lm import FastAudioLM
from harness.models.fast_path import MAX_SAMPLES, QWEN2_AUDIO

__all__ = ["MAX_SAMPLES", "Qwen2AudioBackend"]


class Qwen2AudioBackend(FastAudioLM):
    """A Qwen2-Audio checkpoint: a long clip's 30 s windows are heard as "Audio 1", "Audio 2"
    of one turn, as the processor builds a conversation of several audios."""

    ARCHITECTURE = QWEN2_AUDIO
