"""Qwen2.5-Omni's thinker (text out) on the fast path.

The thinker is a Qwen2-Audio in kind for an audio-only prompt: its own encoder reads each clip's
real frames in 2 s windows (so it runs as the model calls it), ``<|AUDIO|>`` placeholders between
``<|audio_bos|>`` and ``<|audio_eos|>``, a Qwen2 decoder whose multimodal rotary positions are,
for audio and text alone, the ordinary positions on each of their three axes (what
``get_rope_index`` gives without an image or a video), so the fast path's positions serve as
they are. Its processor is not loaded (its video part needs torchvision): the tokenizer, the
feature extractor and the chat template are read alone.
"""

from __future__ import annotations

from harness.models.fast_audio_lm import FastAudioLM
from harness.models.fast_path import QWEN2_5_OMNI_THINKER


class Qwen2_5OmniThinkerBackend(FastAudioLM):
    """A Qwen2.5-Omni checkpoint's thinker (the talker, which speaks, is not loaded)."""

    ARCHITECTURE = QWEN2_5_OMNI_THINKER


def qwen2_5_omni_7b(path=None, plain_generate: bool = False, **options):
    """``qwen2.5-omni-7b``: ``$QWEN2_5_OMNI_7B_PATH`` or the local Hugging Face cache, the thinker
    on the fast path; ``plain_generate=True``: through its processor and ``generate``
    (:class:`~harness.models.hf_generic.HFGenerateBackend`; the processor needs torchvision)."""
    from harness.models.hf_generic import HFGenerateBackend
    from harness.models.registry import checkpoint

    where = checkpoint("qwen2.5-omni-7b", path)
    if plain_generate:
        return HFGenerateBackend.from_pretrained(
            "qwen2.5-omni-7b", where, Qwen2_5OmniThinkerBackend.ARCHITECTURE.model_class,
            **options)
    return Qwen2_5OmniThinkerBackend.from_pretrained("qwen2.5-omni-7b", where, **options)
