"""Whisper log-mel features for a batch of clips, padded to the longest clip rather than 30 s,
computed where the model runs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# 0.1 s past the longest clip: the STFT frames at its edge see what they see in the 30 s window
PAD_SAMPLES = 1_600


def log_mel_batch(extractor, audios: Sequence[np.ndarray], max_samples: int, device="cpu"):
    """Log-mel features on ``device``, padded to the longest clip plus 0.1 s (identical on the
    real frames to the processor's 30 s padding, at a fraction of the cost), and each clip's real
    frame count (a CPU tensor: nothing waits on the device to read it).

    Whisper's extractor pads clip by clip and hands its spectrogram back as numpy, so on a GPU
    the features went there and back before the encoder read them; here the waveforms go over
    once, as one padded (pinned) batch, and the features stay. Bit-identical on the CPU to the
    extractor's own batched spectrogram (tested). An extractor without that spectrogram, or one
    that dithers, is called as it is.
    """
    import torch

    longest = min(max_samples, max(len(a) for a in audios) + PAD_SAMPLES)
    frames = torch.tensor([-(-min(len(a), longest) // extractor.hop_length) for a in audios])
    if not hasattr(extractor, "_torch_extract_fbank_features") or getattr(extractor, "dither", False):
        feats = extractor([a[:max_samples] for a in audios], sampling_rate=16_000,
                          padding="max_length", max_length=longest, truncation=True,
                          return_tensors="pt")
        return feats["input_features"].to(device), frames
    waves = _padded_batch(audios, longest, torch.device(device), torch)
    return whisper_log_mel(extractor, waves.to(device, non_blocking=True)), frames


def _padded_batch(audios: Sequence[np.ndarray], longest: int, device, torch):
    """The clips as one zero-padded float32 (clips, samples) host tensor, pinned when it is bound
    for a GPU (so the copy runs at full bus speed)."""
    batch = torch.empty((len(audios), longest), dtype=torch.float32,
                        pin_memory=device.type == "cuda")
    rows = batch.numpy()
    for row, audio in zip(rows, audios):
        n = min(len(audio), longest)
        row[:n] = audio[:n]
        row[n:] = 0.0
    return batch


def whisper_log_mel(extractor, waves):
    """Whisper's log-mel spectrogram of a (clips, samples) batch, on the batch's device: the
    operations of ``WhisperFeatureExtractor._torch_extract_fbank_features`` (without dither),
    keeping the result where it was computed."""
    import torch

    from harness.models._hf_common import to_device

    window = torch.hann_window(extractor.n_fft, device=waves.device)
    stft = torch.stft(waves, extractor.n_fft, extractor.hop_length, window=window,
                      return_complex=True)
    power = (stft[..., :-1].abs() ** 2).contiguous()
    filters = to_device(extractor.mel_filters, waves.device).float()
    log_spec = torch.clamp(filters.T @ power, min=1e-10).log10()
    peak = log_spec.max(dim=2, keepdim=True)[0].max(dim=1, keepdim=True)[0]  # per clip
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


def log_mel_each(extractor, audios: Sequence[np.ndarray], device="cpu"):
    """Each clip's log-mel as Whisper's extractor computes it for that clip alone
    (``padding="longest"``: the STFT's reflection at the clip's own ends, its peak over its own
    frames), for the whole batch at once on ``device``: (clips, mels, longest's frames), zero past
    each clip's ``len // hop`` frames, and those counts (a CPU tensor).

    Each clip is reflected at its ends on the host, as a centred STFT pads it, then zero-padded
    to the longest: the frames of each clip then read exactly its own padded samples. An
    extractor that dithers is called clip by clip.
    """
    import torch

    half, hop = extractor.n_fft // 2, extractor.hop_length
    frames = torch.tensor([len(a) // hop for a in audios])
    if getattr(extractor, "dither", 0.0):
        each = [extractor(a, sampling_rate=16_000, padding="longest",
                          return_tensors="np")["input_features"][0] for a in audios]
        out = np.zeros((len(each), each[0].shape[0], int(frames.max())), np.float32)
        for row, f in zip(out, each):
            row[:, : f.shape[-1]] = f
        return torch.from_numpy(out).to(device), frames
    longest = max(len(a) for a in audios) + 2 * half
    waves = torch.zeros((len(audios), longest), dtype=torch.float32,
                        pin_memory=torch.device(device).type == "cuda")
    for row, audio in zip(waves.numpy(), audios):
        row[: len(audio) + 2 * half] = np.pad(np.asarray(audio, np.float32), half, mode="reflect")
    waves = waves.to(device, non_blocking=True)
    window = torch.hann_window(extractor.n_fft, device=waves.device)
    stft = torch.stft(waves, extractor.n_fft, hop, window=window, center=False,
                      return_complex=True)[..., : int(frames.max())]
    filters = torch.as_tensor(extractor.mel_filters, device=waves.device).float()
    log_spec = torch.clamp(filters.T @ stft.abs().pow(2), min=1e-10).log10()
    real = (torch.arange(log_spec.shape[-1], device=waves.device)[None]
            < frames.to(waves.device)[:, None])[:, None]
    peak = log_spec.masked_fill(~real, -torch.inf).amax(dim=(1, 2), keepdim=True)
    return ((torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0) * real, frames
