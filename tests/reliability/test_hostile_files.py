"""Paths that are not what they claim: a FIFO, a directory or an unreadable file where a clip or a
label file should be, and a WAV header that lies. Each becomes an item error or a DataError naming
the file; nothing blocks, and the cell is still recorded."""

import builtins
import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import harness
from harness.data import AudioError, DataError, load_dataset
from harness.data.audio import AudioLimits, read_audio
from harness.data.clips import content_hash
from tests.helpers import corpus_copy

HANG = 60  # seconds before a blocked call is interrupted (a FIFO opened for reading never returns)


@contextlib.contextmanager
def no_hang(seconds: int = HANG):
    def interrupt(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def unreadable(monkeypatch, path: Path) -> None:
    """Opening ``path`` fails as under chmod 000 (the tests run as root, who reads anything)."""
    def guarded(real):
        def opening(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real(file, *args, **kwargs)
        return opening

    # every reader: ours (os.open, then open on its descriptor), wave's, the hash's
    monkeypatch.setattr(builtins, "open", guarded(open))
    monkeypatch.setattr(os, "open", guarded(os.open))
    for name in ("read", "info", "SoundFile"):
        monkeypatch.setattr(sf, name, _refusing(getattr(sf, name), path))


def _refusing(real, path: Path):
    def call(file, *args, **kwargs):
        if Path(file) == path:
            raise sf.LibsndfileError(2, prefix="Error opening: ") if hasattr(sf, "LibsndfileError") \
                else RuntimeError("Permission denied")
        return real(file, *args, **kwargs)

    return call


def test_clips_that_are_not_regular_files_are_item_errors_and_the_cell_is_recorded(
        tmp_path, monkeypatch, record_property):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    root = corpus_copy("crema_d", tmp_path)
    dataset = load_dataset("crema_d", root)
    fifo, folder, locked = (item.audio_path for item in list(dataset)[:3])
    fifo.unlink()
    os.mkfifo(fifo)
    folder.unlink()
    folder.mkdir()
    unreadable(monkeypatch, locked)
    with no_hang():
        record = harness.evaluate("tiny-qwen2-audio", load_dataset("crema_d", root), "base",
                                  n_resamples=20)
    items = {i.id: i for i in record.items}
    assert "is a FIFO, not a regular file" in items[fifo.stem].error
    assert "is a directory, not a regular file" in items[folder.stem].error
    assert "unreadable audio" in items[locked.stem].error
    assert record.metrics.errors == 3 and record.metrics.n_items == len(dataset)
    assert all(items[i.id].error is None for i in list(dataset)[3:])
    with no_hang():
        assert content_hash(fifo) == "not a regular file: is a FIFO, not a regular file"
        assert content_hash(folder).startswith("not a regular file: is a directory")
        assert content_hash(locked) == "unreadable: Permission denied"
    record_property("reliability", "hostile files: a FIFO, a directory and an unreadable file as "
                                   "clips: 3 item errors, the cell recorded, hangs 0")


def test_label_files_that_cannot_be_read_are_named(tmp_path, monkeypatch):
    root = corpus_copy("crema_d", tmp_path / "c")
    votes = root / "processedResults" / "tabulatedVotes.csv"
    votes.unlink()
    os.mkfifo(votes)
    with no_hang(), pytest.raises(DataError, match="tabulatedVotes.csv: label file is a FIFO"):
        load_dataset("crema_d", root)
    votes.unlink()
    votes.mkdir()
    with pytest.raises(DataError, match="tabulatedVotes.csv: label file is a directory"):
        load_dataset("crema_d", root)
    root = corpus_copy("iemocap", tmp_path / "i") / "IEMOCAP_full_release"
    evaluation = next((root / "Session1" / "dialog" / "EmoEvaluation").glob("*.txt"))
    real = Path.read_bytes

    def denied(self):
        if self == evaluation:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    dataset = load_dataset("iemocap", root)  # one dialog's file: a problem, the rest loads
    [problem] = [p for p in dataset.problems if Path(p.path) == evaluation]
    assert "cannot be read: Permission denied" in problem.message and len(dataset) > 0


def test_a_header_that_lies_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "one-hertz.wav"
    sf.write(path, np.zeros(25_000, dtype=np.float32), 1)  # 25,000 frames at 1 Hz: 6.9 hours
    with pytest.raises(AudioError, match="one-hertz.wav: implausible sample rate 1 Hz"):
        read_audio(path)
    sf.write(path, np.zeros(16_000 * 3, dtype=np.float32), 16_000)
    with pytest.raises(AudioError, match="clip of 3 s is longer than the 2 s allowed"):
        read_audio(path, limits=AudioLimits(max_seconds=2))
    monkeypatch.setenv("HARNESS_MAX_CLIP_SECONDS", "1")
    with pytest.raises(AudioError, match="longer than the 1 s allowed"):
        read_audio(path)
