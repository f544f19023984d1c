"""``create_model_and_transforms`` with the real signature; builds :class:`FakeFlamingo`.

As NVIDIA's code: the factory imports HTSAT from its laion_clap copy (whose package initialisers
the adapter must skip: here they raise); the language model's ``forward`` takes the attention mask
by position (``FlamingoLMMixin``); ``generate`` repeats the windows for beams and a mask only when
it is one clip's, asserting that the mask matches the windows.
"""

from __future__ import annotations

import torch
from my_laion_clap.CLAP.src.laion_clap.clap_module.htsat import create_htsat_model
from torch import nn
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

CALLS: list[dict] = []
CREATED: list[dict] = []  # the settings each model was created with


class FakeFlamingo(nn.Module):
    """Conditions the language model on the clip by adding a projection of its windows to every
    input embedding (the real one uses gated cross-attention layers)."""

    def __init__(self, lang_encoder, window_samples: int):
        super().__init__()
        self.lang_encoder = lang_encoder
        self.audio_proj = nn.Linear(window_samples, lang_encoder.config.hidden_size, bias=False)
        self._condition = None
        lang_encoder.get_input_embeddings().register_forward_hook(
            lambda module, args, out: out if self._condition is None else out + self._condition)

    def _encode(self, audio_x, audio_x_mask):
        if audio_x.shape[0] > 1 and audio_x_mask.shape[0] == 1:  # as NVIDIA's _encode_audio_x
            audio_x_mask = audio_x_mask.repeat(audio_x.shape[0], 1)
        assert audio_x.ndim == 3 and audio_x_mask.shape == audio_x.shape[:2], (
            f"{audio_x_mask.shape} != {audio_x.shape[:2]}")
        pooled = (audio_x * audio_x_mask[..., None]).sum(1) / audio_x_mask.sum(1, keepdim=True)
        self._condition = self.audio_proj(pooled)[:, None]

    def forward(self, audio_x, audio_x_mask, lang_x, attention_mask=None, **kwargs):
        CALLS.append({"call": "forward", "audio_x": audio_x, "lang_x": lang_x})
        self._encode(audio_x, audio_x_mask)
        try:
            return self.lang_encoder(input_ids=lang_x, attention_mask=attention_mask)
        finally:
            self._condition = None

    def generate(self, audio_x, audio_x_mask, lang_x, attention_mask=None, **kwargs):
        CALLS.append({"call": "generate", "audio_x": audio_x, "lang_x": lang_x, **kwargs})
        num_beams = kwargs.pop("num_beams", 1)
        if num_beams > 1:  # the windows only, as NVIDIA's generate
            audio_x = audio_x.repeat_interleave(num_beams, dim=0)
        self._encode(audio_x, audio_x_mask)
        try:
            return self.lang_encoder.generate(input_ids=lang_x, attention_mask=attention_mask,
                                              num_beams=num_beams, **kwargs)
        finally:
            self._condition = None


def create_model_and_transforms(clap_config: dict, lang_encoder_path: str, tokenizer_path: str,
                                audio_transformer_kwargs: dict, cross_attn_every_n_layers: int = 1,
                                use_local_files: bool = False, decoder_layers_attr_name=None,
                                freeze_lm_embeddings: bool = False, unfreeze_full_lm: bool = False,
                                cache_dir=None, **flamingo_kwargs):
    CREATED.append({"use_local_files": use_local_files, "freeze_lm_embeddings": freeze_lm_embeddings,
                    "gradient_checkpointing": flamingo_kwargs.get("gradient_checkpointing")})
    torch.load(clap_config["checkpoint"], map_location="cpu")  # as the real CLAP does
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=use_local_files)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<audio>", "<|endofchunk|>", "<|PAD_TOKEN|>"]})
    tokenizer.pad_token = "<|PAD_TOKEN|>"
    if tokenizer.sep_token is None:
        tokenizer.add_special_tokens({"sep_token": "<SEP>"})
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         eos_token_id=tokenizer.eos_token_id)  # no pad id, as NVIDIA's Qwen2.5
    window = int(float(clap_config["window_length"]) * 16_000)
    create_htsat_model(None)
    lang_encoder = Qwen2ForCausalLM(config)
    lang_encoder.forward = _mask_by_position(lang_encoder.forward)
    return FakeFlamingo(lang_encoder, window), tokenizer


def _mask_by_position(forward):
    """``FlamingoLMMixin.forward``'s signature: the attention mask required, by position."""

    def mixin_forward(input_ids, attention_mask, **kwargs):
        return forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    return mixin_forward
