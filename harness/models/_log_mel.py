"""Whisper log-mel features for a batch of clips, padded to the longest clip rather than 30 s."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_mel_batch(extractor, audios: Sequence[np.ndarray], max_samples: int,
                  device_kw: dict | None = None):
    """Log-mel features padded to the longest clip plus 0.1 s (identical on the real frames to
    the processor's 30 s padding, at a fraction of the cost), and each clip's real frame count.

    Whisper's extractor is called on a batch padded here: its own per-clip padding and tensor
    conversions cost more than the spectrogram (bit-identical output, tested). ``device_kw``:
    ``{"device": ...}`` where the extractor computes on a device. Returns CPU tensors.
    """
    import torch

    device_kw = device_kw or {}
    longest = min(max_samples, max(len(a) for a in audios) + 1_600)
    if not hasattr(extractor, "_torch_extract_fbank_features") or getattr(extractor, "dither", 0.0):
        feats = extractor([a[:max_samples] for a in audios], sampling_rate=16_000,
                          return_attention_mask=True, padding="max_length", max_length=longest,
                          truncation=True, return_tensors="pt", **device_kw)
        return feats["input_features"], feats["attention_mask"].sum(-1)
    batch = np.zeros((len(audios), longest), dtype=np.float32)
    for row, audio in zip(batch, audios):
        row[: min(len(audio), longest)] = audio[:longest]
    mel = extractor._torch_extract_fbank_features(batch, device_kw.get("device", "cpu"))
    frames = [-(-min(len(a), longest) // extractor.hop_length) for a in audios]
    return torch.from_numpy(np.asarray(mel)), torch.tensor(frames)
