"""Ultravox v0.3/v0.4 on the fast path, without the checkpoint's own code.

The parts come from :mod:`harness.models._ultravox_model`; what differs from Qwen2-Audio's path:

- features: Whisper's log-mel of each clip alone (``padding="longest"``, as Ultravox's
  processor calls it), zero-padded to the batch's longest;
- encoder: the Whisper encoder over those frames with each clip's padding zeroed and masked, so
  every clip gets what it would alone, then the stacking projector (8 frames a row, 6.25 rows a
  second of audio);
- chat: Llama 3.1's template takes text content, so the audio placeholder is written into the
  user's text ahead of the prompt (``<|audio|>\\n`` + prompt, as vLLM's Ultravox example has it),
  and it is expanded, in id space, into as many copies of a token the text never holds
  (``<|reserved_special_token_0|>``) as the clip has rows; Ultravox's processor writes its
  end-of-sequence token there, which the text does hold elsewhere. The rows replace those
  tokens' embeddings either way, so the LM sees the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.models._audio_chat import PROMPT_SLOT, AudioTextProcessor, ChatText
from harness.models._audio_encoder import encoder_layers
from harness.models._hf_common import to_device
from harness.models.api import ModelUnavailable
from harness.models.fast_audio_lm import FastAudioLM
from harness.models.fast_path import MAX_SAMPLES, ULTRAVOX, FastPathOptions

PLACEHOLDER = ULTRAVOX.audio_token


class TextContentChat(ChatText):
    """Chat templates whose user content is one text (Llama 3.1's): the audio placeholders
    are written into it before the prompt."""

    def __init__(self, processor, device, audio_token: str) -> None:
        super().__init__(processor, device, audio_token)
        # whether the template trims the content (Llama 3.1's ``| trim``)
        self.trims = PROMPT_SLOT + " \n" not in self._rendered(PROMPT_SLOT + " \n")

    def template(self, audios: int = 1) -> str:
        if audios not in self._templates:
            self._templates[audios] = self._rendered(self.audio_token * audios + "\n" + PROMPT_SLOT)
        return self._templates[audios]

    def render(self, prompt: str, n_audio_tokens) -> str:
        """As :meth:`ChatText.render`, with the prompt's trailing whitespace dropped where the
        template trims the content, as it would rendered with it."""
        return super().render(prompt.rstrip() if self.trims else prompt, n_audio_tokens)

    def _rendered(self, content: str) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)


class UltravoxBackend(FastAudioLM):
    """An Ultravox v0.3/v0.4 checkpoint, its parts assembled here."""

    ARCHITECTURE = ULTRAVOX
    CHAT = TextContentChat

    @staticmethod
    def parts(model) -> tuple:
        lm = model.language_model
        return model, model.audio_tower, model.multi_modal_projector, lm.model, lm.lm_head

    @classmethod
    def from_pretrained(cls, name: str, path, dtype: str = "auto", device: str | None = None,
                        attn_implementation: str = "sdpa", **options: object) -> UltravoxBackend:
        """The checkpoint in ``path`` and the parts its config names (local copies only)."""

        from harness.models._checkpoint_files import unreadable_files_named
        from harness.models._hf_common import pick_device, resolve_dtype
        from harness.models._ultravox_model import UltravoxLayout, load_ultravox

        device = pick_device(device, name)
        layout = UltravoxLayout.read(Path(path))
        model = load_ultravox(layout, resolve_dtype(dtype, device), device, attn_implementation)
        with unreadable_files_named(name, path, "processor files"):
            processor = ultravox_processor(layout)
        return cls(name, model, processor, layout.revision(), FastPathOptions.from_kwargs(**options))

    def features(self, audios: Sequence[np.ndarray]):
        """Each clip's own log-mel frames, as Whisper's extractor computes them for it alone
        (``padding="longest"``), batched on the device and zero-padded to the longest
        (:func:`~harness.models._log_mel.log_mel_each`), and the frame counts."""
        from harness.models._log_mel import log_mel_each

        extractor = self.processor.feature_extractor
        shortest = min(len(a) for a in audios)
        if shortest <= extractor.n_fft // 2:  # its spectrogram reflects the clip's edges
            raise ValueError(f"a clip of {shortest} samples is too short for Whisper's log-mel "
                             f"(at least {extractor.n_fft // 2 + 1} at 16 kHz)")
        return log_mel_each(extractor, [a[:MAX_SAMPLES] for a in audios], self.device)

    def encode_audio(self, features, frames):
        """The encoder and projector over the batch, each clip as if alone; returns
        (B, rows, H) and each clip's audio tokens, ``ceil(ceil(frames / 2) / 8)``."""
        layers = (self._compiled and self._compiled.encoder_layers) or self.audio_tower.layers
        return encode_stacked(self.audio_tower, self.projector, layers, features, frames,
                              self.device, self.dtype)


def encode_stacked(tower, projector, layers, features, frames, device, dtype):
    """Whisper encoder (``layers``: the tower's own or compiled ones) and stacking projector over
    zero-padded features; each clip's frames past its own are zeroed after the first
    convolution and after the encoder (where alone it would have had none), and masked in
    attention."""
    import torch

    frames = frames.cpu()
    width = int(frames.max())
    conv_lens = (frames - 1) // 2 + 1
    x = features[:, :, :width].to(device, dtype)
    real = to_device(torch.arange(width)[None] < frames[:, None], device).to(dtype)[:, None]
    h = torch.nn.functional.gelu(tower.conv1(x)) * real
    h = torch.nn.functional.gelu(tower.conv2(h)).permute(0, 2, 1)
    h = encoder_layers(layers, h + tower.embed_positions.weight[: h.shape[1]], conv_lens, device,
                       dtype)
    valid = torch.arange(h.shape[1])[None] < conv_lens[:, None]
    h = tower.layer_norm(h) * to_device(valid, device).to(dtype)[..., None]
    stack = projector.stack
    return projector(h), (conv_lens + stack - 1) // stack


def ultravox_processor(layout) -> AudioTextProcessor:
    """Its tokenizer (with Llama 3.1's chat template) and the Whisper feature extractor: the
    checkpoint's own, else (as Ultravox's pipeline falls back) its LM's and its encoder's."""
    from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor

    folder = layout.folder
    has_words = (folder / "tokenizer.json").is_file()
    words = folder if has_words or layout.text_folder is None else layout.text_folder
    sounds = folder if (folder / "preprocessor_config.json").is_file() else layout.audio_folder
    # Llama 3.1's tokenizer, by its class: no auto class reads the config, which maps its
    # classes to code of its own (transformers would stop to ask whether to run it)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(words, local_files_only=True)
    if not tokenizer.chat_template and words != layout.text_folder and layout.text_folder:
        tokenizer.chat_template = PreTrainedTokenizerFast.from_pretrained(
            layout.text_folder, local_files_only=True).chat_template
    if not tokenizer.chat_template:
        raise ModelUnavailable(f"ultravox: no chat template in {folder} or its LM's folder")
    if sounds is None:
        raise ModelUnavailable(f"ultravox: no preprocessor_config.json in {folder} and no "
                               "audio_model_id to take one from")
    return AudioTextProcessor(tokenizer,
                              WhisperFeatureExtractor.from_pretrained(sounds, local_files_only=True))


def ultravox(version: str):
    """The registry factory of ``ultravox-v{version}``: ``$ULTRAVOX_V0_4_PATH`` (for v0.4) or
    the local HF cache, on the fast path (``options``: FastPathOptions fields, ``dtype``,
    ``device``)."""
    name = f"ultravox-v{version}"

    def factory(path=None, **options) -> UltravoxBackend:
        from harness.models.registry import checkpoint

        return UltravoxBackend.from_pretrained(name, checkpoint(name, path), **options)

    return factory


ultravox_v0_3 = ultravox("0.3")
ultravox_v0_4 = ultravox("0.4")
