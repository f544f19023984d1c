"""The stand-in of NVIDIA's Audio Flamingo 2 package (``fake_af2``) for the tests: its checkpoint
folder, the model loaded through it, and its modules forgotten again."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import embedded_path

TINY_PATH = embedded_path("tiny_qwen2_audio")
FAKE = Path(__file__).parent / "fake_af2"


def stand_in_checkpoint(root: Path) -> Path:
    """NVIDIA's checkpoint layout under ``root`` (configs/inference.yaml, clap_ckpt/, safe_ckpt/
    chunks), for the stand-in's model: 1-second windows, at most 3."""
    import torch
    from safetensors.torch import save_file

    (root / "configs").mkdir()
    (root / "configs" / "inference.yaml").write_text(
        "clap_config:\n  method: nvclap-large\n  audio_embed_dim: 2048\n"
        "  checkpoint: clap_ckpt/epoch_16.pt\n  window_length: 1.0\n  window_overlap: 0.0\n"
        "  max_num_window: 3\n"
        f"model_config:\n  lang_encoder_path: {TINY_PATH}\n  tokenizer_path: {TINY_PATH}\n"
        "  cross_attn_every_n_layers: 1\n  audio_transformer_kwargs: {n_head: 8}\n")
    (root / "clap_ckpt").mkdir()
    torch.save({"state_dict": {}}, root / "clap_ckpt" / "epoch_16.pt")
    (root / "safe_ckpt").mkdir()
    generator = torch.Generator().manual_seed(1)
    save_file({"audio_proj.weight": torch.randn(32, 16_000, generator=generator) * 0.05},
              str(root / "safe_ckpt" / "chunk_0.safetensors"))
    (root / "safe_ckpt" / "metadata.json").write_text(json.dumps(["chunk_0"]))
    return root


def forget_nvidias_modules() -> None:
    """Drop the stand-in's modules (its package and its laion_clap copy) from ``sys.modules``."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("audio_flamingo_2", "my_laion_clap")]:
        del sys.modules[name]


@contextlib.contextmanager
def stand_in_model(checkpoint: Path) -> Iterator:
    """``audio-flamingo-2`` loaded through the stand-in, imported afresh (as if installed);
    ``.factory`` is its factory module, for its records of the calls."""
    from harness.models import get_model

    forget_nvidias_modules()
    with pytest.MonkeyPatch.context() as paths:
        paths.syspath_prepend(str(FAKE))
        try:
            model = get_model("audio-flamingo-2", path=checkpoint, device="cpu")
            model.factory = sys.modules["audio_flamingo_2.factory"]
            yield model
        finally:
            forget_nvidias_modules()


def iemocap_requests(count: int) -> list:
    """The embedded IEMOCAP's first ``count`` clips with their base prompts."""
    from harness.data import load_dataset
    from harness.models import Request
    from harness.prompts import base_prompt

    dataset = load_dataset("iemocap")
    return [Request(it.load_audio(), base_prompt("iemocap", it.transcript, dataset.labels), it.id)
            for it in list(dataset)[:count]]
