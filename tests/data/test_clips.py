import os

import pytest

from harness.data import AudioError
from harness.data import clips as clips_module
from harness.data.clips import MEMO, ClipFacts, clip_facts, content_hash, identity


def test_a_clip_is_hashed_once_while_its_file_is_unchanged(tmp_path, monkeypatch):
    from tests.helpers import corpus_copy

    clip = next((corpus_copy("crema_d", tmp_path) / "AudioWAV").glob("*.wav"))
    MEMO.clear()
    calls = []
    real = clips_module._digest
    monkeypatch.setattr(clips_module, "_digest", lambda p: calls.append(p) or real(p))
    facts = clip_facts(clip)
    assert clip_facts(clip) == facts and content_hash(clip) == facts.digest and len(calls) == 1
    os.utime(clip, ns=(0, 12345))  # rewritten in place: a new modification time, a new identity
    assert clip_facts(clip) == facts and len(calls) == 2
    assert "file-xxh3-128:" + facts.digest in facts.audio_key()


def test_a_clip_rewritten_in_place_with_its_modification_time_set_back_is_hashed_again(tmp_path):
    """``cp -p``, ``touch -r`` and ``rsync -t`` set a file's modification time back; its change
    time no tool can: the clip's new bytes are hashed, not its old hash remembered."""
    import time

    from tests.helpers import corpus_copy

    clip = next((corpus_copy("crema_d", tmp_path) / "AudioWAV").glob("*.wav"))
    MEMO.clear()
    facts = clip_facts(clip)
    before, data = clip.stat(), clip.read_bytes()
    time.sleep(0.05)  # past the kernel's coarse clock tick, so that the change time moves
    clip.write_bytes(data[:-2] + bytes([data[-2] ^ 1, data[-1]]))  # one sample's low bit
    os.utime(clip, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert clip.stat().st_mtime_ns == before.st_mtime_ns and clip.stat().st_size == before.st_size
    assert clip_facts(clip).digest == content_hash(clip) == clips_module._digest(clip)
    assert clip_facts(clip).digest != facts.digest


def test_facts_name_what_reading_changes_and_unreadable_clips_raise(tmp_path):
    import numpy as np
    import soundfile as sf

    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.zeros((800, 2), dtype=np.float32), 8_000)
    assert [n.split(": ", 1)[1] for n in clip_facts(stereo).notes] == [
        "2 channels down-mixed to mono", "resampled from 8000 Hz to 16000 Hz"]
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="unreadable audio"):
        clip_facts(tmp_path / "text.wav")
    os.mkfifo(tmp_path / "fifo.wav")
    assert identity(tmp_path / "fifo.wav") is None
    with pytest.raises(AudioError, match="FIFO"):
        clip_facts(tmp_path / "fifo.wav")


def test_stored_facts_are_checked_when_read_back():
    facts = ClipFacts("0" * 32, ("a note",))
    assert ClipFacts.from_json(facts.to_json()) == facts
    for bad in ({"xxh3_128": "short", "notes": []}, {"xxh3_128": "0" * 32, "notes": [1]}, {}):
        with pytest.raises((ValueError, KeyError)):
            ClipFacts.from_json(bad)


@pytest.mark.parametrize(("channels", "rate", "fmt"), [(1, 16_000, "WAV"), (2, 44_100, "WAV"),
                                                       (1, 8_000, "WAV"), (1, 16_000, "FLAC")])
def test_a_first_sight_reads_the_file_once_for_the_facts_and_samples_reading_apart_gives(
        tmp_path, monkeypatch, channels, rate, fmt):
    import numpy as np
    import soundfile as sf

    from harness.data import _pcm_wav as pcm_wav
    from harness.data.audio import read_audio
    from harness.data.clips import first_sight, read_facts

    path = tmp_path / f"clip.{fmt.lower()}"
    tone = np.random.default_rng(3).uniform(-0.9, 0.9, (rate // 3, channels))
    sf.write(str(path), tone, rate, subtype="PCM_16", format=fmt)
    MEMO.clear()
    facts, samples = first_sight(path)
    assert facts == read_facts(path) and MEMO.get(identity(path)) == facts
    if fmt == "FLAC":  # not a plain WAV: read again when the model needs it
        assert samples is None
    else:
        np.testing.assert_array_equal(samples, read_audio(path)[0])
    buffers = []
    take = lambda n: buffers.append(np.empty(n, np.float32)) or buffers[-1]  # noqa: E731
    MEMO.clear()
    if fmt == "WAV" and channels == 1 and rate == 16_000:  # written straight into the buffer
        assert np.shares_memory(first_sight(path, out=take)[1], buffers[-1])
    monkeypatch.setattr(pcm_wav, "ONE_READ", 100)  # too big to read whole: hashed apart
    MEMO.clear()
    assert first_sight(path) == (facts, None)


def test_a_first_sight_refuses_what_the_facts_refuse(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from harness.data.clips import first_sight

    long_clip = tmp_path / "long.wav"
    sf.write(str(long_clip), np.zeros(16_000 * 3, np.int16), 16_000, subtype="PCM_16")
    monkeypatch.setenv("HARNESS_MAX_CLIP_SECONDS", "2")
    with pytest.raises(AudioError, match="longer than the 2 s allowed"):
        first_sight(long_clip)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="unreadable audio"):
        first_sight(tmp_path / "text.wav")
    os.mkfifo(tmp_path / "fifo.wav")
    with pytest.raises(AudioError, match="FIFO"):
        first_sight(tmp_path / "fifo.wav")


def test_the_memo_keeps_at_most_its_limit_the_oldest_going_first():
    from harness.data.clips import ClipMemo

    memo = ClipMemo(limit=2)
    facts = {name: ClipFacts(name) for name in "abc"}
    memo.put("a", facts["a"])
    memo.put(None, facts["b"])  # no identity (not a regular file): never remembered
    memo.put("b", facts["b"])
    assert (memo.get("a"), memo.get("b"), memo.get(None)) == (facts["a"], facts["b"], None)
    memo.put("c", facts["c"])
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (None, facts["b"], facts["c"])
    memo.clear()
    assert memo.get("b") is None and memo.get("c") is None


def test_a_missing_clip_s_content_hash_says_so(tmp_path):
    assert content_hash(tmp_path / "gone.wav") == "missing"
