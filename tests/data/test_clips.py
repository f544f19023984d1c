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
