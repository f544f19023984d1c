"""Audio Flamingo 3 (transformers' ``AudioFlamingo3ForConditionalGeneration``) on the fast path.

Its parts are Qwen2-Audio's in kind (a Whisper-large encoder pooled to 25 tokens a second, an
MLP projector, a Qwen2 decoder, ``<sound>`` placeholders), so it runs on
:class:`~harness.models.fast_audio_lm.FastAudioLM` as it is. One difference: its processor cuts a
long clip into 30 s windows and writes all their tokens in one run of placeholders, and so does
``long_audio="chunk"`` here.
"""

from __future__ import annotations

from harness.models.fast_audio_lm import FastAudioLM
from harness.models.fast_path import AUDIO_FLAMINGO_3


class AudioFlamingo3Backend(FastAudioLM):
    """An Audio Flamingo 3 checkpoint (the ``-hf`` conversion transformers loads)."""

    ARCHITECTURE = AUDIO_FLAMINGO_3


def audio_flamingo_3(path=None, plain_generate: bool = False, **options):
    """``audio-flamingo-3``: ``$AUDIO_FLAMINGO_3_PATH`` or the local Hugging Face cache, on the
    fast path (``options``: :class:`~harness.models.fast_path.FastPathOptions` fields, ``dtype``,
    ``device``); ``plain_generate=True``: through its processor and ``generate`` instead
    (:class:`~harness.models.hf_generic.HFGenerateBackend`, the reference the fast path is
    checked against; its answers are cached apart)."""
    from harness.models.hf_generic import HFGenerateBackend
    from harness.models.registry import checkpoint

    where = checkpoint("audio-flamingo-3", path)
    if plain_generate:
        return HFGenerateBackend.from_pretrained(
            "audio-flamingo-3", where, AudioFlamingo3Backend.ARCHITECTURE.model_class, **options)
    return AudioFlamingo3Backend.from_pretrained("audio-flamingo-3", where, **options)
