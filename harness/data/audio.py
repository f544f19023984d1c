"""Audio I/O: every clip becomes 16 kHz mono float32, or an :class:`AudioError` naming the file."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from harness._regular import not_a_regular_file
from harness.data._pcm_wav import read_pcm16
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


@dataclass(frozen=True)
class AudioLimits:
    """What a clip's header may claim before the clip is decoded (a header claiming 1 Hz once
    made a short file decode into 6.9 hours and 3.2 GB). ``HARNESS_MAX_CLIP_SECONDS`` sets
    ``max_seconds`` for a run."""

    min_rate: int = 1_000
    max_rate: int = 384_000
    max_seconds: float = 3_600.0

    @classmethod
    def from_env(cls) -> AudioLimits:
        """The limits with ``HARNESS_MAX_CLIP_SECONDS`` where it is set.

        Raises:
            ValueError: it is set to anything but a number of seconds above 0.
        """
        from harness._env import positive_float

        value = positive_float("HARNESS_MAX_CLIP_SECONDS")
        return cls() if value is None else cls(max_seconds=value)


def read_audio(
    path: str | Path, sr: int = TARGET_SR, max_seconds: float | None = None,
    limits: AudioLimits | None = None, out: Callable[[int], np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """A clip as mono float32 at ``sr`` Hz, and a note for each change that took.

    Multi-channel audio is averaged to mono; other rates are resampled with scipy's polyphase
    filter. ``max_seconds`` truncates longer clips. The header is checked against ``limits``
    (default :meth:`AudioLimits.from_env`) before anything is decoded. ``out(n)``, where given,
    supplies the float32 buffer a mono clip at ``sr`` is written into (the runner's
    :class:`~harness.data.arena.Arena`).

    Raises:
        AudioError: the file is missing, not a regular file (a FIFO is never opened), unreadable,
            empty, implausible (rate or duration), or holds NaN/inf samples.
    """
    path = Path(path)
    why = not_a_regular_file(path)
    if why is not None:
        raise AudioError(path, "audio file not found" if why == "not found" else f"audio path {why}")
    data, native_sr = _decode(path, limits or AudioLimits.from_env())
    notes = change_notes(path, data.shape[1], native_sr, sr)
    mono = mono_at(data, native_sr, sr, out)
    if max_seconds is not None and mono.size > int(max_seconds * sr):
        notes.append(f"{path}: truncated to {max_seconds:g} s")
        mono = mono[: int(max_seconds * sr)]  # a view: still contiguous
    return mono, notes


def mono_at(data: np.ndarray, native_sr: int, sr: int = TARGET_SR,
            out: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Decoded samples, (frames, channels) as int16 or float32, as contiguous mono float32 at
    ``sr`` Hz (see :func:`read_audio`, which calls it)."""
    if data.dtype == np.int16:  # scaled by 2**-15, as libsndfile scales it (a test holds them equal)
        direct = data.shape[1] == 1 and native_sr == sr and out is not None
        target = out(data.shape[0]).reshape(-1, 1) if direct else None  # type: ignore[misc]
        data = np.multiply(data, np.float32(1 / 32768), dtype=np.float32, out=target)
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    if native_sr != sr:
        mono = _resample(mono, native_sr, sr)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _decode(path: Path, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """The file's samples, (frames, channels), and its rate; raises AudioError naming it. A plain
    16-bit PCM WAV is read with :mod:`wave` (:mod:`harness.data._pcm_wav`), anything else with
    libsndfile."""
    import soundfile as sf

    try:
        plain = read_pcm16(path, check=lambda header: check_header(header, limits))
        if plain is not None:
            return plain
        with sf.SoundFile(str(path)) as f:
            check_header(f, limits)
            data, native_sr = _samples(f), f.samplerate
    except AudioError as exc:
        raise AudioError(path, exc.reason) from None
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(path, f"unreadable audio: {exc}") from None
    if data.size == 0:
        raise AudioError(path, "audio file holds no samples")
    if data.dtype != np.int16 and not np.isfinite(data).all():  # integers are always finite
        raise AudioError(path, "audio holds NaN or infinite samples")
    return data, native_sr


_SCRATCH = threading.local()  # per thread: the last 16-bit clip's samples, reused for the next


def _samples(f) -> np.ndarray:
    """The open file's samples, (frames, channels): 16-bit WAV as int16, read into a buffer this
    thread reuses (the caller scales them to float32 at once: half the time of libsndfile's own
    float conversion, and no fresh memory to fault in for the integers), anything else as
    float32."""
    if not (f.format in ("WAV", "WAVEX") and f.subtype == "PCM_16"):
        return f.read(dtype="float32", always_2d=True)
    shape = (f.frames, f.channels)
    scratch = getattr(_SCRATCH, "buffer", None)
    if scratch is None or scratch.size < shape[0] * shape[1] or scratch.size > 4 * max(
            shape[0] * shape[1], 1 << 20):
        scratch = _SCRATCH.buffer = np.empty(max(shape[0] * shape[1], 1), dtype=np.int16)
    out = scratch[:shape[0] * shape[1]].reshape(shape)
    read = f.read(out=out)
    return out[:len(read)]


def change_notes(path: Path, channels: int, native_sr: int, sr: int) -> list[str]:
    """What reading the clip changes (down-mixing, resampling), from its header alone."""
    notes = []
    if channels > 1:
        notes.append(f"{path}: {channels} channels down-mixed to mono")
    if native_sr != sr:
        notes.append(f"{path}: resampled from {native_sr} Hz to {sr} Hz")
    return notes


def check_header(info, limits: AudioLimits) -> None:
    """Raise AudioError (no path: the caller adds it) when the header is implausible."""
    if not limits.min_rate <= info.samplerate <= limits.max_rate:
        raise AudioError("", f"implausible sample rate {info.samplerate} Hz (allowed "
                             f"{limits.min_rate}-{limits.max_rate})")
    seconds = info.frames / info.samplerate
    if seconds > limits.max_seconds:
        raise AudioError("", f"clip of {seconds:.0f} s is longer than the {limits.max_seconds:g} s "
                             "allowed (HARNESS_MAX_CLIP_SECONDS)")


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = gcd(src, dst)
    return resample_poly(x, dst // g, src // g).astype(np.float32)
