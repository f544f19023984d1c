"""Audio I/O: every clip becomes 16 kHz mono float32, or an :class:`AudioError` naming the file."""

from __future__ import annotations

import hashlib
import warnings
from math import gcd
from pathlib import Path

import numpy as np

from harness.data.problems import AudioError

TARGET_SR = 16_000


def load_audio(
    path: str | Path, sr: int = TARGET_SR, max_seconds: float | None = None
) -> np.ndarray:
    """Read a clip as mono float32 at ``sr`` Hz, warning what had to change (see
    :func:`read_audio`, which returns those notes instead).

    Raises:
        AudioError: the file is missing, unreadable, empty, or holds NaN/inf samples.
    """
    samples, notes = read_audio(path, sr, max_seconds)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return samples


def read_audio(
    path: str | Path, sr: int = TARGET_SR, max_seconds: float | None = None
) -> tuple[np.ndarray, list[str]]:
    """A clip as mono float32 at ``sr`` Hz, and a note for each change that took.

    Multi-channel audio is averaged to mono; other rates are resampled with scipy's polyphase
    filter. ``max_seconds`` truncates longer clips.

    Raises:
        AudioError: the file is missing, unreadable, empty, or holds NaN/inf samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "audio file not found")
    try:
        data, native_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(path, f"unreadable audio: {exc}") from None
    if data.size == 0:
        raise AudioError(path, "audio file holds no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio holds NaN or infinite samples")
    mono, notes = data[:, 0], []
    if data.shape[1] > 1:
        notes.append(f"{path}: {data.shape[1]} channels down-mixed to mono")
        mono = data.mean(axis=1, dtype=np.float32)
    if native_sr != sr:
        notes.append(f"{path}: resampled from {native_sr} Hz to {sr} Hz")
        mono = _resample(mono, native_sr, sr)
    if max_seconds is not None and mono.size > int(max_seconds * sr):
        notes.append(f"{path}: truncated to {max_seconds:g} s")
        mono = mono[: int(max_seconds * sr)]
    return np.ascontiguousarray(mono, dtype=np.float32), notes


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = gcd(src, dst)
    return resample_poly(x, dst // g, src // g).astype(np.float32)


def file_sha256(path: str | Path) -> str:
    """Content hash of a file's bytes (``"missing"`` when it does not exist)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return "missing"
    return h.hexdigest()
