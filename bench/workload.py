"""What the GPU benchmarks run: the full Qwen2-Audio-7B architecture (or a tiny config of it)
with random weights, 6-second clips and the IEMOCAP prompts, tokenized with Qwen's own tokenizer
once ``python -m bench.qwen_tokenizer`` has built it (else with the tiny fixture's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import embedded_path
from harness.models import Decoding
from harness.prompts import base_prompt, readout_prompt

QWEN_PROCESSOR = Path(__file__).resolve().parent / ".qwen2-audio-processor"
LABELS = ["Neutral state", "Happiness", "Anger", "Sadness"]
TRANSCRIPT = "I told you I would be there on time."
GREEDY = Decoding(max_new_tokens=40, min_new_tokens=40)  # 40 new tokens pinned, as in the issue
BEAM = Decoding(mode="beam", num_candidates=5, max_new_tokens=40, min_new_tokens=40)
FULL = {
    "audio": {"model_type": "qwen2_audio_encoder", "d_model": 1280, "encoder_layers": 32,
              "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "num_mel_bins": 128,
              "max_source_positions": 1500},
    "text": {"model_type": "qwen2", "vocab_size": 156032, "hidden_size": 4096,
             "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 32, "max_position_embeddings": 8192, "rope_theta": 10000.0},
}
TINY = {
    "audio": dict(FULL["audio"], d_model=64, encoder_layers=2, encoder_attention_heads=4,
                  encoder_ffn_dim=128),
    "text": dict(FULL["text"], vocab_size=2048, hidden_size=64, intermediate_size=128,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4),
}


def bench_prompts() -> tuple[str, str]:
    """The IEMOCAP base and readout prompts every benchmark clip is given."""
    return (base_prompt("iemocap", TRANSCRIPT, LABELS), readout_prompt("iemocap", TRANSCRIPT, LABELS))


def processor_path(tiny: bool) -> Path:
    """Qwen's tokenizer when bench/qwen_tokenizer.py has built it, else the tiny fixture's (always
    for the tiny config, whose vocabulary is 2,048)."""
    return QWEN_PROCESSOR if QWEN_PROCESSOR.is_dir() and not tiny else embedded_path("tiny_qwen2_audio")


NARROW = {"audio": TINY["audio"], "text": dict(TINY["text"], vocab_size=FULL["text"]["vocab_size"])}


def build(tiny: bool, device: str, narrow: bool = False):
    """The model (random weights: float32 for the tiny config, bf16 for the full one) and its
    processor. ``narrow``: the tiny config's widths with the full vocabulary and Qwen's own
    tokenizer (float32, for the CPU): prompts, answers and so the prompt tokens an item are the
    full architecture's, counted without its 8B weights."""
    import torch
    from transformers import AutoProcessor

    from fixtures.tiny_architectures import random_qwen2_audio

    if narrow and not QWEN_PROCESSOR.is_dir():
        raise SystemExit("--narrow needs Qwen's tokenizer: run python -m bench.qwen_tokenizer")
    processor = AutoProcessor.from_pretrained(QWEN_PROCESSOR if narrow else processor_path(tiny))
    sizes = NARROW if narrow else TINY if tiny else FULL
    dtype = torch.float32 if tiny or narrow else torch.bfloat16
    return random_qwen2_audio(processor, sizes["audio"], sizes["text"], dtype, device), processor


def clips(n: int, seconds: float = 6.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32) for _ in range(n)]
