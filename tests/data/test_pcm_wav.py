"""The standard library's reading of a plain 16-bit WAV against libsndfile's, and what it leaves
to libsndfile."""

import struct

import numpy as np
import pytest
import soundfile as sf

from harness.data import _pcm_wav as pcm_wav
from harness.data._pcm_wav import pcm16_header, pcm16_in_bytes, read_pcm16
from harness.data.audio import read_audio
from harness.data.clips import read_facts


@pytest.fixture(autouse=True, params=["read whole", "read through wave"])
def reading(request, monkeypatch):
    """Each test twice: a file read in one call, and one too big for that, read through wave."""
    if request.param == "read through wave":
        monkeypatch.setattr(pcm_wav, "ONE_READ", 0)


def samples(frames, channels, seed=0):
    rng = np.random.default_rng(seed)
    out = rng.integers(-32768, 32768, size=(frames, channels), dtype=np.int16)
    out[:2, 0] = [-32768, 32767][:frames]
    return out


def wav_bytes(data: np.ndarray, rate: int, extra_chunks: bytes = b"", data_size: int | None = None,
              fmt_tag: int = 1) -> bytes:
    """A RIFF WAV by hand: fmt, then ``extra_chunks``, then data (its size field may lie)."""
    channels = data.shape[1]
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * channels * 2, channels * 2, 16)
    body = data.astype("<i2").tobytes()
    size = len(body) if data_size is None else data_size
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
              + b"data" + struct.pack("<I", size) + body)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def libsndfile(path):
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    return data, rate


@pytest.mark.parametrize(("frames", "channels", "rate"), [(16_000, 1, 16_000), (4_001, 2, 44_100),
                                                          (1, 1, 8_000), (999, 6, 48_000)])
def test_a_plain_wav_reads_as_libsndfile_reads_it(tmp_path, frames, channels, rate):
    path = tmp_path / "clip.wav"
    sf.write(str(path), samples(frames, channels), rate, subtype="PCM_16")
    ours, our_rate = read_pcm16(path)
    theirs, their_rate = libsndfile(path)
    np.testing.assert_array_equal(ours, theirs)
    assert our_rate == their_rate == rate and ours.dtype == np.int16
    info = sf.info(str(path))
    header = pcm16_header(path)
    assert (header.channels, header.samplerate, header.frames) == (info.channels, info.samplerate,
                                                                   info.frames)
    assert_same_in_memory(path)


def assert_same_in_memory(path):
    """The file's bytes read in memory give what reading the file gives."""
    in_memory, on_disk = pcm16_in_bytes(path.read_bytes()), read_pcm16(path)
    if on_disk is None:
        assert in_memory is None, path
        return
    header, data = in_memory
    np.testing.assert_array_equal(data, on_disk[0])
    assert header == pcm16_header(path) and data.dtype == np.int16


def test_chunks_before_the_data_and_an_odd_chunk_are_skipped_as_libsndfile_skips_them(tmp_path):
    data = samples(3_000, 2, seed=1)
    extra = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00" + b"junk" + struct.pack("<I", 4) + b"abcd"
    path = tmp_path / "chunky.wav"
    path.write_bytes(wav_bytes(data, 16_000, extra))
    np.testing.assert_array_equal(read_pcm16(path)[0], libsndfile(path)[0])
    np.testing.assert_array_equal(read_pcm16(path)[0], data)
    assert_same_in_memory(path)


def test_what_wave_does_not_read_as_libsndfile_does_is_left_to_libsndfile(tmp_path):
    tone = samples(2_000, 1).astype(np.float64) / 32768
    for subtype, fmt in (("PCM_24", "WAV"), ("FLOAT", "WAV"), ("PCM_U8", "WAV"), ("PCM_16", "FLAC"),
                         ("PCM_16", "RF64")):
        path = tmp_path / f"{subtype}.{fmt.lower()}"
        sf.write(str(path), tone, 16_000, subtype=subtype, format=fmt)
        assert read_pcm16(path) is None and pcm16_header(path) is None, (subtype, fmt)
        assert pcm16_in_bytes(path.read_bytes()) is None, (subtype, fmt)
        got, _ = read_audio(path)
        np.testing.assert_array_equal(got, sf.read(str(path), dtype="float32")[0])
    extensible = tmp_path / "extensible.wav"  # wave reads it from Python 3.12 on: either way, equal
    sf.write(str(extensible), tone, 16_000, subtype="PCM_16", format="WAVEX")
    np.testing.assert_array_equal(read_audio(extensible)[0],
                                  sf.read(str(extensible), dtype="float32")[0])
    truncated = tmp_path / "truncated.wav"  # the data chunk claims more than the file holds
    truncated.write_bytes(wav_bytes(samples(2_000, 1), 16_000)[:-1_000])
    assert read_pcm16(truncated) is None and pcm16_header(truncated) is None
    assert pcm16_in_bytes(truncated.read_bytes()) is None
    np.testing.assert_array_equal(read_audio(truncated)[0],
                                  sf.read(str(truncated), dtype="float32")[0])
    for name, content in (("empty.wav", wav_bytes(samples(0, 1), 16_000)),
                          ("garbage.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
                          ("text.wav", b"not audio at all\n"), ("nothing.wav", b"")):
        (tmp_path / name).write_bytes(content)
        assert read_pcm16(tmp_path / name) is None and pcm16_header(tmp_path / name) is None
        assert pcm16_in_bytes(content) is None


def test_the_limits_are_checked_before_the_samples_are_read(tmp_path):
    from harness.data import AudioError

    path = tmp_path / "slow.wav"  # a header claiming 1,000 Hz: 16,000 frames are 16 s
    path.write_bytes(wav_bytes(samples(16_000, 1), 1_000))
    read = []

    def refuse(header):
        read.append(header.frames)
        raise AudioError("", "too long")

    with pytest.raises(AudioError, match="too long"):
        read_pcm16(path, check=refuse)
    assert read == [16_000]
    facts = read_facts(path)  # the facts read the same header: a resampling note, no decode
    assert facts.notes == (f"{path}: resampled from 1000 Hz to 16000 Hz",)


@pytest.mark.parametrize("reader", ["file_bytes", "digest"])
def test_a_fifo_is_refused_once_opened_without_blocking(tmp_path, reader):
    import os
    import threading

    from harness.data import clips

    read = pcm_wav.file_bytes if reader == "file_bytes" else clips._digest
    fifo = tmp_path / "clip.wav"
    os.mkfifo(fifo)
    refused: list = []
    thread = threading.Thread(target=lambda: refused.append(_refusal(read, fifo)), daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert refused and "not a regular file" in refused[0]  # a blocking open would still wait


def _refusal(read, path):
    try:
        read(path)
    except OSError as exc:
        return str(exc)
    return "read"


def test_a_clip_swapped_for_a_fifo_after_its_check_is_an_audio_error_not_a_wait(tmp_path,
                                                                                monkeypatch):
    import os
    import threading

    from harness.data import AudioError
    from harness.data import audio as audio_module

    fifo = tmp_path / "clip.wav"
    os.mkfifo(fifo)
    monkeypatch.setattr(audio_module, "not_a_regular_file", lambda path: None)  # checked before
    outcome: list = []

    def read():
        try:
            read_audio(fifo)
        except AudioError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert outcome and "not a regular file" in outcome[0]


def test_headers_libsndfile_refuses_are_left_to_it(tmp_path):
    """Found by ``bench/fuzz_files.py clips``: wave read 16,000 channels and a rate of 2^32 - 1
    Hz where libsndfile refuses both; the clip is now libsndfile's to refuse."""
    from harness.data import AudioError

    many = tmp_path / "many_channels.wav"
    many.write_bytes(wav_bytes(samples(2, 1_025), 16_000))
    fast = bytearray(wav_bytes(samples(400, 1), 16_000))
    fast[24:28] = (2**32 - 1).to_bytes(4, "little")
    (tmp_path / "fast.wav").write_bytes(bytes(fast))
    for path in (many, tmp_path / "fast.wav"):
        assert read_pcm16(path) is None and pcm16_header(path) is None, path.name
        assert pcm16_in_bytes(path.read_bytes()) is None, path.name
        with pytest.raises(AudioError, match="unreadable audio"):
            read_audio(path)


@pytest.mark.parametrize(("channels", "rate"), [(1_024, 16_000), (1, 1), (1, 2**31 - 1)])
def test_the_headers_at_libsndfiles_limits_are_read_as_it_reads_them(tmp_path, channels, rate):
    """The most channels libsndfile allows, the slowest rate and the fastest it keeps: read here,
    equal to its reading; one past the fastest (2^31 Hz, negative to it) is left to it."""
    clip = bytearray(wav_bytes(samples(3, channels), 16_000))
    clip[24:28] = rate.to_bytes(4, "little")
    path = tmp_path / "edge.wav"
    path.write_bytes(bytes(clip))
    info = sf.info(str(path))
    assert pcm16_header(path) == pcm_wav.PcmHeader(info.channels, info.samplerate, info.frames)
    ours, our_rate = read_pcm16(path)
    np.testing.assert_array_equal(ours, libsndfile(path)[0])
    assert our_rate == rate
    assert_same_in_memory(path)
    clip[24:28] = (2**31).to_bytes(4, "little")
    path.write_bytes(bytes(clip))
    assert read_pcm16(path) is None and pcm16_header(path) is None
    assert pcm16_in_bytes(bytes(clip)) is None


def test_a_data_chunk_claiming_a_little_more_than_the_file_holds_is_left_to_libsndfile(tmp_path):
    """Cut short by fewer bytes than a canonical header's 44 (a stereo clip), and cut short
    behind a chunk before the data: the header alone says nothing is wrong, the sizes do."""
    stereo = wav_bytes(samples(2_000, 2), 16_000)[:-20]
    extra = b"LIST" + struct.pack("<I", 200) + bytes(200)
    chunky = wav_bytes(samples(2_000, 1), 16_000, extra)[:-100]
    for name, content in (("stereo.wav", stereo), ("chunky.wav", chunky)):
        path = tmp_path / name
        path.write_bytes(content)
        assert pcm16_in_bytes(content) is None, name  # never raises: numpy would, reading past
        assert read_pcm16(path) is None, name
        assert pcm16_header(path) is None or name == "chunky.wav", name
        assert len(read_audio(path)[0]) == len(sf.read(str(path))[0]), name  # what it recovers


def test_a_file_of_exactly_one_read_is_read_in_one_call(tmp_path, monkeypatch):
    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(samples(100, 1), 16_000))
    monkeypatch.setattr(pcm_wav, "ONE_READ", path.stat().st_size)
    assert pcm_wav.file_bytes(path) == path.read_bytes()
    monkeypatch.setattr(pcm_wav, "ONE_READ", path.stat().st_size - 1)
    assert pcm_wav.file_bytes(path) is None
