import numpy as np
import pytest
import soundfile as sf

from harness.data import AudioError, load_audio
from harness.data.clips import content_hash

SR = 16_000


def tone(seconds=1.0, sr=SR, channels=1, freq=440.0):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def test_16k_mono_pcm16_round_trip(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(), SR, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (SR,)
    np.testing.assert_allclose(audio, tone(), atol=1e-4)


@pytest.mark.parametrize("sr", [8_000, 22_050, 44_100, 48_000])
def test_other_rates_are_resampled(tmp_path, sr):
    path = tmp_path / "a.wav"
    sf.write(path, tone(sr=sr, freq=300.0), sr, subtype="PCM_16")
    with pytest.warns(UserWarning, match=f"a.wav: resampled from {sr} Hz to 16000 Hz"):
        audio = load_audio(path)
    assert audio.shape == (SR,)
    # the tone survives: its spectrum peaks at 300 Hz
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SR / audio.size - 300.0) <= 1.0


def test_stereo_is_averaged_and_24_bit_and_float_read(tmp_path):
    left, right = tone(freq=200.0), tone(freq=500.0)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), SR, subtype="PCM_24")
    with pytest.warns(UserWarning, match="s.wav: 2 channels down-mixed to mono"):
        np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-5)
    sf.write(tmp_path / "f.wav", tone(), SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "f.wav"), tone(), atol=1e-6)


def test_truncation_warns(tmp_path):
    sf.write(tmp_path / "long.wav", tone(seconds=3.0), SR)
    with pytest.warns(UserWarning, match="truncated to 1 s"):
        assert load_audio(tmp_path / "long.wav", max_seconds=1.0).shape == (SR,)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "unreadable audio"),
        (b"this is a text file, not audio\n", "unreadable audio"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "unreadable audio"),
    ],
    ids=["zero-length", "text", "truncated-header"],
)
def test_unreadable_files_name_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=f"bad.wav: {reason}"):
        load_audio(path)


def test_empty_nonfinite_and_missing(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0), SR)
    with pytest.raises(AudioError, match="empty.wav: audio file holds no samples"):
        load_audio(tmp_path / "empty.wav")
    x = tone()
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio holds NaN or infinite"):
        load_audio(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="nope.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")


def test_file_hash(tmp_path):
    (tmp_path / "x").write_bytes(b"abc")
    assert content_hash(tmp_path / "x") == "06b05ab6733a618578af5f94892f3950"  # XXH3-128 of b"abc"
    assert content_hash(tmp_path / "missing") == "missing"


@pytest.mark.parametrize("channels", [1, 2])
def test_16_bit_wav_is_read_as_libsndfile_scales_it(tmp_path, channels):
    """The int16 reading scaled by 2**-15 equals libsndfile's own float32 conversion, bit for
    bit, the extremes included; written into a caller's buffer it is the same."""
    import soundfile as sf

    from harness.data.arena import Arena
    from harness.data.audio import read_audio

    rng = np.random.default_rng(3)
    samples = rng.integers(-32768, 32768, size=(16_000, channels), dtype=np.int16)
    samples[:4, 0] = [-32768, 32767, 0, -1]
    path = tmp_path / "clip.wav"
    sf.write(str(path), samples, 16_000, subtype="PCM_16")
    own = sf.read(str(path), dtype="float32", always_2d=True)[0]
    expected = own[:, 0] if channels == 1 else own.mean(axis=1, dtype=np.float32)
    got, _ = read_audio(path)
    into, _ = read_audio(path, out=Arena(block=1 << 16).take)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(into, expected)
    assert got.dtype == into.dtype == np.float32


def test_the_limits_on_a_header_hold_at_their_edges():
    from types import SimpleNamespace

    from harness.data.audio import AudioLimits, check_header

    limits = AudioLimits()
    assert (limits.min_rate, limits.max_rate, limits.max_seconds) == (1_000, 384_000, 3_600.0)
    for rate in (1_000, 384_000):  # allowed, and an hour exactly
        check_header(SimpleNamespace(samplerate=rate, frames=rate * 3_600), limits)
    for rate in (999, 384_001):
        with pytest.raises(AudioError, match=f"implausible sample rate {rate} Hz "
                                             r"\(allowed 1000-384000\)"):
            check_header(SimpleNamespace(samplerate=rate, frames=rate), limits)
    with pytest.raises(AudioError, match="clip of 3600 s is longer than the 3600 s allowed"):
        check_header(SimpleNamespace(samplerate=16_000, frames=16_000 * 3_600 + 1), limits)


def test_a_clip_that_libsndfile_reads_has_its_header_checked_too(tmp_path):
    """A float or FLAC clip (not the plain 16-bit reader's) claiming 500 Hz is refused before
    it is decoded, as a 16-bit one is."""
    sf.write(tmp_path / "slow.wav", tone(seconds=1.0), 500, subtype="FLOAT")
    sf.write(tmp_path / "slow.flac", tone(seconds=1.0), 500)
    for name in ("slow.wav", "slow.flac"):
        with pytest.raises(AudioError, match=f"{name}: implausible sample rate 500 Hz"):
            load_audio(tmp_path / name)


def test_a_clip_exactly_as_long_as_the_limit_is_not_said_to_be_truncated(tmp_path):
    import warnings

    sf.write(tmp_path / "one.wav", tone(seconds=1.0), SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note at all
        assert load_audio(tmp_path / "one.wav", max_seconds=1.0).shape == (SR,)


def test_the_reused_16_bit_buffer_gives_each_clip_its_own_samples_and_lets_a_long_one_go(tmp_path):
    """16-bit clips that libsndfile reads (not the plain-WAV reader's) land in one buffer per
    thread: stereo and mono, longer and shorter than the last, each comes out as libsndfile's
    own reading, and after a long clip a short one does not keep its buffer's memory."""
    from harness.data import audio

    rng = np.random.default_rng(0)
    for n, (frames, channels) in enumerate([(1_600, 2), (5_000_000, 1), (800, 1), (100, 2),
                                            (3_000, 3)]):
        path = tmp_path / f"clip{n}.wav"
        sf.write(path, rng.integers(-32768, 32767, (frames, channels), dtype=np.int16), 16_000,
                 subtype="PCM_16", format="WAVEX")
        with sf.SoundFile(path) as f:
            got = audio._samples(f).copy()
        expected, _ = sf.read(path, dtype="int16", always_2d=True)
        np.testing.assert_array_equal(got, expected)
        if frames * channels < 2**20:
            assert audio._SCRATCH.buffer.size <= 4 * 2**20
