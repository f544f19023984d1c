"""What the harness knows of a clip before decoding it: its content hash and what reading it will
change, remembered against the file's identity so that a rerun never decodes or hashes it again.

The content hash is XXH3-128 of the file's bytes (the ``xxhash`` package): 2 µs for a 6-second
16-bit clip where SHA-256 takes 95 µs on this project's 2-core machine; 128 bits make an
accidental collision among even 10^9 clips vanishingly unlikely (about 10^-21). It is not a
defence against clips crafted to collide, which an evaluation's own corpus does not need.

A file's identity is its absolute path, device, inode, size, and modification and change times
(to the nanosecond), as ``git`` judges a file unchanged: a clip rewritten in place gets a new
change time (which, unlike the modification time that ``cp -p``, ``touch -r`` or ``rsync -t`` set
back, no tool can restore), so a new identity, and is hashed again. A clip rewritten within the
same tick of the kernel's clock as it was hashed (a few milliseconds) can keep its identity. The
facts live in this process (:data:`MEMO`); the runner also keeps them in
the generation cache (see :mod:`harness.strategies._stream`), so that the next run's process
starts with them.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness._regular import not_a_regular_file, open_regular
from harness.data._pcm_wav import file_bytes, pcm16_header, pcm16_in_bytes
from harness.data.audio import TARGET_SR, AudioLimits, change_notes, check_header, mono_at
from harness.data.problems import AudioError

LOADER_VERSION = "1"  # what turns a file into samples; a change here changes every clip's key


@dataclass(frozen=True, slots=True)  # the process remembers one per clip: no __dict__ each
class ClipFacts:
    """A clip's content hash (XXH3-128 of its file's bytes, hex), and the notes reading it at
    ``sr`` gives."""

    digest: str
    notes: tuple[str, ...] = ()

    def audio_key(self, sr: int = TARGET_SR) -> str:
        """What stands for the samples in a generation's cache key: the file's content, the
        rate it is read at and the loader's version determine them."""
        return f"file-xxh3-128:{self.digest}@{sr}Hz/loader-{LOADER_VERSION}"

    def to_json(self) -> dict:
        return {"xxh3_128": self.digest, "notes": list(self.notes)}

    @classmethod
    def from_json(cls, value: dict) -> ClipFacts:
        digest, notes = value["xxh3_128"], value["notes"]
        if (not isinstance(digest, str) or len(digest) != 32
                or not all(isinstance(n, str) for n in notes)):
            raise ValueError("not a clip's facts")
        return cls(digest, tuple(notes))


def identity(path: str | os.PathLike[str], sr: int = TARGET_SR) -> str | None:
    """The file's identity (with the rate it is read at), or None when it is not a regular file
    (missing, a FIFO, a directory): such a clip is never remembered."""
    return identity_and_size(path, sr)[0]


def identity_and_size(path: str | os.PathLike[str], sr: int = TARGET_SR) -> tuple[str | None, int]:
    """:func:`identity` and the file's size in bytes (0 where it is not a regular file), from
    one ``stat``."""
    try:
        st = os.stat(path)
    except OSError:
        return None, 0
    if not stat.S_ISREG(st.st_mode):
        return None, 0
    # the path as given, made absolute (no symlink resolution: its lstat per component cost
    # more than the rest of the identity); another spelling of a file is only another identity
    return (f"{os.path.abspath(path)}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
            f"\0{st.st_ctime_ns}\0{sr}", st.st_size)


class ClipMemo:
    """Facts by file identity, in this process; at most ``limit`` clips (then the oldest go).
    The runner's reader threads fill it at once."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self._facts: dict[str, ClipFacts] = {}
        self.limit = limit
        self._lock = threading.Lock()

    def get(self, key: str | None) -> ClipFacts | None:
        return None if key is None else self._facts.get(key)

    def put(self, key: str | None, facts: ClipFacts) -> None:
        if key is None:
            return
        with self._lock:
            if len(self._facts) >= self.limit:
                self._facts.pop(next(iter(self._facts)))
            self._facts[key] = facts

    def clear(self) -> None:
        self._facts.clear()


MEMO = ClipMemo()


def clip_facts(path: str | os.PathLike[str], sr: int = TARGET_SR,
               limits: AudioLimits | None = None, key: str | None = None) -> ClipFacts:
    """The clip's facts: remembered, or read now (its bytes hashed, its header read; nothing
    decoded) and remembered. ``key``: the file's :func:`identity`, where the caller has just
    taken it (else it is taken here).

    Raises:
        AudioError: the file is missing, not a regular file, unreadable, or its header is not
            audio or is implausible (rate, duration).
    """
    key = key or identity(path, sr)
    known = MEMO.get(key)
    if known is not None:
        return known
    facts = read_facts(Path(path), sr, limits)
    MEMO.put(key, facts)
    return facts


def read_facts(path: Path, sr: int = TARGET_SR, limits: AudioLimits | None = None) -> ClipFacts:
    """Hash the file's bytes and read its header (see :func:`clip_facts`)."""
    return _read(path, sr, limits, None)[0]


def first_sight(path: str | os.PathLike[str], sr: int = TARGET_SR, key: str | None = None,
                out: Callable[[int], np.ndarray] | None = None
                ) -> tuple[ClipFacts, np.ndarray | None]:
    """:func:`clip_facts` of a clip not known yet, with its samples (mono float32 at ``sr``, as
    :func:`~harness.data.audio.read_audio` reads them, into ``out(n)`` where given) where the
    same read of the file gives them: a plain 16-bit PCM WAV of at most 16 MiB is read once
    for its hash, header and samples (50 µs for a 6-second clip on this project's 2-core
    machine, against 120 µs hashed and read apart); for anything else the samples are None."""
    key = key or identity(path, sr)
    facts, samples = _read(Path(path), sr, None, out or _fresh)
    MEMO.put(key, facts)
    return facts, samples


def _fresh(n: int) -> np.ndarray:
    return np.empty(n, dtype=np.float32)


def _read(path: Path, sr: int, limits: AudioLimits | None,
          out: Callable[[int], np.ndarray] | None) -> tuple[ClipFacts, np.ndarray | None]:
    """The clip's facts, and its samples where ``out`` is given and one read gives them."""
    import soundfile as sf

    limits = limits or AudioLimits.from_env()  # a bad setting is its own error, not the clip's
    why = not_a_regular_file(path)
    if why is not None:
        raise AudioError(path, "audio file not found" if why == "not found" else f"audio path {why}")
    try:
        data = file_bytes(path) if out is not None else None
        plain = pcm16_in_bytes(data) if data is not None else None
        digest = _digest(path) if data is None else _digest_bytes(data)
        # bytes read and not a plain WAV: wave would refuse the file too, so libsndfile reads it
        info = plain[0] if plain else (data is None and pcm16_header(path)) or sf.info(str(path))
        check_header(info, limits)
    except AudioError as exc:
        raise AudioError(path, exc.reason) from None
    except Exception as exc:  # OSError, soundfile's LibsndfileError, RuntimeError
        raise AudioError(path, f"unreadable audio: {exc}") from None
    facts = ClipFacts(digest, tuple(change_notes(path, info.channels, info.samplerate, sr)))
    return facts, (mono_at(plain[1], info.samplerate, sr, out) if plain and out else None)


def _digest(path: str | os.PathLike[str]) -> str:
    """XXH3-128 of the file's bytes, read in 4 MiB blocks (raises OSError)."""
    import xxhash

    digest = xxhash.xxh3_128()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest_bytes(data: bytes) -> str:
    """XXH3-128 of a file's bytes already read (the same digest as :func:`_digest`'s)."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def content_hash(path: str | os.PathLike[str]) -> str:
    """The clip's content hash (remembered when the runner has read the clip), or what stands in
    its place for a file that cannot be read: ``"missing"``, ``"not a regular file: ..."``,
    ``"unreadable: ..."``; never an exception (it goes into a manifest, after every prediction
    was computed; a FIFO is never opened: it would block)."""
    known = MEMO.get(identity(path))
    if known is not None:
        return known.digest
    why = not_a_regular_file(path)
    if why == "not found":
        return "missing"
    if why is not None:
        return f"not a regular file: {why}"
    try:
        return _digest(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or type(exc).__name__}"
