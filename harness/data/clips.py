"""What the harness knows of a clip before decoding it: its content hash and what reading it will
change, remembered against the file's identity so that a rerun never decodes or hashes it again.

A file's identity is its resolved path, device, inode, size and modification time (to the
nanosecond): a clip rewritten in place gets a new modification time, so a new identity, and is
hashed again. The facts live in this process (:data:`MEMO`); the runner also keeps them in the
generation cache (see :mod:`harness.strategies._stream`), so that the next run's process starts
with them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.data.audio import TARGET_SR, AudioLimits, change_notes
from harness.data.problems import AudioError

LOADER_VERSION = "1"  # what turns a file into samples; a change here changes every clip's key


@dataclass(frozen=True)
class ClipFacts:
    """A clip's SHA-256 over its file's bytes, and the notes reading it at ``sr`` gives."""

    sha256: str
    notes: tuple[str, ...] = ()

    def audio_key(self, sr: int = TARGET_SR) -> str:
        """What stands for the samples in a generation's cache key: the file's content, the
        rate it is read at and the loader's version determine them."""
        return f"file-sha256:{self.sha256}@{sr}Hz/loader-{LOADER_VERSION}"

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "notes": list(self.notes)}

    @classmethod
    def from_json(cls, value: dict) -> ClipFacts:
        sha, notes = value["sha256"], value["notes"]
        if not isinstance(sha, str) or len(sha) != 64 or not all(isinstance(n, str) for n in notes):
            raise ValueError("not a clip's facts")
        return cls(sha, tuple(notes))


def identity(path: str | os.PathLike[str], sr: int = TARGET_SR) -> str | None:
    """The file's identity (with the rate it is read at), or None when it is not a regular file
    (missing, a FIFO, a directory): such a clip is never remembered."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return f"{os.path.realpath(path)}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{sr}"


class ClipMemo:
    """Facts by file identity, in this process; at most ``limit`` clips (then the oldest go)."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self._facts: dict[str, ClipFacts] = {}
        self.limit = limit

    def get(self, key: str | None) -> ClipFacts | None:
        return None if key is None else self._facts.get(key)

    def put(self, key: str | None, facts: ClipFacts) -> None:
        if key is None:
            return
        if len(self._facts) >= self.limit:
            self._facts.pop(next(iter(self._facts)))
        self._facts[key] = facts

    def clear(self) -> None:
        self._facts.clear()


MEMO = ClipMemo()


def clip_facts(path: str | os.PathLike[str], sr: int = TARGET_SR,
               limits: AudioLimits | None = None) -> ClipFacts:
    """The clip's facts: remembered, or read now (its bytes hashed, its header read; nothing
    decoded) and remembered.

    Raises:
        AudioError: the file is missing, not a regular file, unreadable, or its header is not
            audio or is implausible (rate, duration).
    """
    key = identity(path, sr)
    known = MEMO.get(key)
    if known is not None:
        return known
    facts = read_facts(Path(path), sr, limits)
    MEMO.put(key, facts)
    return facts


def read_facts(path: Path, sr: int = TARGET_SR, limits: AudioLimits | None = None) -> ClipFacts:
    """Hash the file's bytes and read its header (see :func:`clip_facts`)."""
    import soundfile as sf

    from harness.data._files import not_a_regular_file
    from harness.data.audio import check_header

    why = not_a_regular_file(path)
    if why is not None:
        raise AudioError(path, "audio file not found" if why == "not found" else f"audio path {why}")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        info = sf.info(str(path))
        check_header(info, limits or AudioLimits.from_env())
    except AudioError as exc:
        raise AudioError(path, exc.reason) from None
    except Exception as exc:  # OSError, soundfile's LibsndfileError, RuntimeError
        raise AudioError(path, f"unreadable audio: {exc}") from None
    return ClipFacts(digest.hexdigest(), tuple(change_notes(path, info.channels, info.samplerate, sr)))


def content_sha256(path: str | os.PathLike[str]) -> str:
    """The file's SHA-256 (remembered when the runner read the clip), or what stands in its
    place for a file that cannot be read (see :func:`harness.data.audio.file_sha256`)."""
    from harness.data.audio import file_sha256

    known = MEMO.get(identity(path))
    return known.sha256 if known is not None else file_sha256(path)
