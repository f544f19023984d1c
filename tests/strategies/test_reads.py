"""A reader process reads every kind of clip as the run's own threads do."""

import os

import numpy as np
import pytest
import soundfile as sf

from harness.data.arena import SHAREABLE, Arena
from harness.data.clips import MEMO
from harness.data.problems import DataError
from harness.data.reader_process import ReaderProcess
from harness.models.api import NOT_LOADED, Request
from harness.strategies._reads import ProcessReads, ThreadReads

pytestmark = pytest.mark.skipif(not SHAREABLE, reason="shared blocks need memfd_create (Linux)")


def awkward_clips(folder):
    """Clips of every path through the readers: plain 16 kHz mono WAV (written in place),
    stereo at 44.1 kHz and 8 kHz (resampled: copied in; 8 kHz is twice the samples the
    reservation counts on), FLAC, one over a block, text, a FIFO, a folder, a missing file."""
    rng = np.random.default_rng(7)
    clips = []
    for name, rate, channels, seconds, fmt in [
            ("plain", 16_000, 1, 2.0, "PCM_16"), ("plain2", 16_000, 1, 0.5, "PCM_16"),
            ("stereo", 44_100, 2, 1.0, "PCM_16"), ("narrow", 8_000, 1, 1.5, "PCM_16"),
            ("float", 16_000, 1, 0.3, "FLOAT"), ("long", 16_000, 1, 9.0, "PCM_16")]:
        path = folder / f"{name}.wav"
        sf.write(str(path), rng.uniform(-0.5, 0.5, (int(rate * seconds), channels)), rate,
                 subtype=fmt)
        clips.append(path)
    flac = folder / "clip.flac"
    sf.write(str(flac), rng.uniform(-0.5, 0.5, 12_000), 16_000)
    (folder / "text.wav").write_text("not audio")
    os.mkfifo(folder / "fifo.wav")
    (folder / "folder.wav").mkdir()
    return [*clips, flac, folder / "text.wav", folder / "fifo.wav", folder / "folder.wav",
            folder / "missing.wav"]


def same(a, b) -> bool:
    if isinstance(a, DataError) or isinstance(b, DataError):
        return type(a) is type(b) and str(a) == str(b)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


@pytest.fixture
def reader():
    process = ReaderProcess(Arena(block=64_000, shared=True))  # 4 s: "long" never fits
    yield process
    process.close()


def test_a_reader_process_reads_every_clip_as_this_process_does(tmp_path, reader, monkeypatch):
    paths = awkward_clips(tmp_path)
    ProcessReads(reader).identities(paths[:1])  # started before this process changes folder
    monkeypatch.chdir(tmp_path)
    paths[1] = paths[1].name  # relative to this process's folder
    here, there = ThreadReads(), ProcessReads(reader)
    idents = here.identities(paths)
    assert there.identities(paths) == idents and idents[-3:] == [None] * 3
    sizes = [0 if i is None else int(i.split("\0")[3]) for i in idents]
    pairs = list(zip(paths, idents))
    MEMO.clear()
    expected = list(here.first_sights(pairs, sizes))
    MEMO.clear()
    found = list(there.first_sights(pairs, sizes))
    # a clip that did not fit comes without its samples (read again when needed), as a clip
    # that is not a plain WAV does here
    assert found[5][1] is None and expected[5][1] is not None
    found[5] = (found[5][0], expected[5][1])
    assert [same(a, b) for a, b in zip(found, expected)] == [True] * len(paths)
    assert [MEMO.get(i) for i in idents[:6]] == [e[0] for e in expected[:6]]  # remembered here
    assert found[0][1] is not None and found[0][1].base is not None  # in a shared block
    requests = [Request(NOT_LOADED, "", str(p), "h", p) for p in paths]
    assert all(same(a, b) for a, b in zip(there.samples(requests, sizes),
                                          here.samples(requests, sizes)))
    assert "FIFO" in str(found[-3]) and "directory" in str(found[-2])


def test_clips_are_read_here_when_there_is_no_room_or_no_process(tmp_path, reader, monkeypatch):
    paths = awkward_clips(tmp_path)[:5]
    requests = [Request(NOT_LOADED, "", str(p), "h", p) for p in paths]
    expected = list(ThreadReads().samples(requests, [0] * 5))
    # sizes of 0: one block reserved, most clips do not fit, and are read here
    assert all(same(a, b) for a, b in zip(ProcessReads(reader).samples(requests, [0] * 5),
                                          expected))
    monkeypatch.setattr("sys.executable", "/bin/false")  # a process that exits at once
    broken = ReaderProcess(Arena(block=64_000, shared=True))
    for _ in range(4):
        assert all(same(a, b) for a, b in zip(ProcessReads(broken).samples(requests, [0] * 5),
                                              expected))
    assert broken.started == 3 and not broken.usable  # tried three times, then left alone


def test_the_runs_settings_reach_the_reader_process(tmp_path, reader, monkeypatch):
    paths = awkward_clips(tmp_path)[:2]
    requests = [Request(NOT_LOADED, "", str(p), "h", p) for p in paths]
    reads = ProcessReads(reader)
    assert all(isinstance(s, np.ndarray) for s in reads.samples(requests, [0, 0]))  # started
    monkeypatch.setenv("HARNESS_MAX_CLIP_SECONDS", "1")
    found = list(reads.samples(requests, [0, 0]))
    assert "longer than the 1 s allowed" in str(found[0]) and isinstance(found[1], np.ndarray)
    monkeypatch.delenv("HARNESS_MAX_CLIP_SECONDS")
    assert all(isinstance(s, np.ndarray) for s in reads.samples(requests, [0, 0]))


@pytest.mark.parametrize("setting, long_run, expected", [
    (None, True, ProcessReads), (None, False, ThreadReads), ("process", False, ProcessReads),
    ("2", True, ThreadReads), ("1", True, ThreadReads)])
def test_a_run_reads_in_a_process_when_it_is_long_or_asked_to(setting, long_run, expected,
                                                             monkeypatch):
    from harness.strategies._stream import clip_reads

    if setting is None:
        monkeypatch.delenv("HARNESS_READERS", raising=False)
    else:
        monkeypatch.setenv("HARNESS_READERS", setting)
    with clip_reads(long_run) as reads:
        assert type(reads) is expected
        if setting == "2":
            assert reads.pool is not None
