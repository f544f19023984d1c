"""The model interface's records: a decoding refused when it cannot run and keyed by every field;
a request hashing its samples, reading its clip only when asked, and keeping its clip and its
other fields when its prompt or samples change; the defaults of what a backend returns; all
frozen."""

import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from harness.models.api import NOT_LOADED, Request


def test_a_request_with_another_prompt_or_its_samples_keeps_every_other_field():
    unread = Request(NOT_LOADED, "first", "item-1", "file-xxh3-128:ab@16000Hz", Path("a.wav"))
    samples = np.ones(160, np.float32)
    for changed, field, value in ((unread.with_prompt("second"), "prompt", "second"),
                                  (unread.with_samples(samples), "audio", samples)):
        for f in dataclasses.fields(Request):  # a field added to Request must be carried too
            expected = value if f.name == field else getattr(unread, f.name)
            assert getattr(changed, f.name) is expected, f.name
    assert unread.with_samples(samples).loaded and not unread.with_prompt("x").loaded


def test_decoding_defaults_and_a_key_that_holds_every_field():
    from harness.models.api import Decoding

    decoding = Decoding()
    assert (decoding.mode, decoding.num_candidates, decoding.max_new_tokens,
            decoding.min_new_tokens, decoding.temperature, decoding.top_p, decoding.seed,
            decoding.constrained) == ("greedy", 1, 96, 0, 1.0, 1.0, 0, False)
    assert json.loads(decoding.key()) == {**dataclasses.asdict(decoding), "json_labels": []}
    assert decoding.key() == Decoding().key() and list(json.loads(decoding.key())) == sorted(
        f.name for f in dataclasses.fields(Decoding))
    assert len({Decoding(seed=1).key(), decoding.key(), Decoding(max_new_tokens=9).key()}) == 3


@pytest.mark.parametrize(("fields", "message"), [
    ({"constrained": True}, "constrained decoding needs json_labels (the answer's keys)"),
    ({"mode": "nucleus"}, "mode must be one of"),
    ({"num_candidates": 3}, "greedy decoding returns one candidate"),
    ({"mode": "sample", "num_candidates": 0}, "num_candidates must be a whole number of at least 1, not 0"),
    ({"mode": "beam", "num_candidates": 2.0}, "num_candidates must be a whole number of at least 1, not 2.0"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a whole number of at least 1, not 0"),
    ({"max_new_tokens": True}, "max_new_tokens must be a whole number of at least 1, not True"),
    ({"min_new_tokens": 5, "max_new_tokens": 4}, "need 0 <= min_new_tokens <= max_new_tokens"),
    ({"min_new_tokens": -1}, "need 0 <= min_new_tokens <= max_new_tokens"),
    ({"top_p": 0.0}, "top_p must be above 0 and at most 1, not 0.0"),
    ({"top_p": 1.01}, "top_p must be above 0 and at most 1, not 1.01"),
    ({"top_p": math.nan}, "top_p must be above 0 and at most 1, not nan"),
    ({"temperature": 0.0}, "temperature must be a finite number above 0, not 0.0"),
    ({"temperature": -1.0}, "temperature must be a finite number above 0, not -1.0"),
    ({"temperature": math.inf}, "temperature must be a finite number above 0, not inf"),
    ({"temperature": math.nan}, "temperature must be a finite number above 0, not nan"),
])
def test_a_decoding_that_cannot_be_run_is_refused_when_made(fields, message):
    from harness.models.api import Decoding

    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        Decoding(**fields)
    assert Decoding(mode="beam", num_candidates=3, min_new_tokens=4, max_new_tokens=4)
    assert Decoding(mode="sample", num_candidates=2, top_p=1.0, temperature=1e-3)


def test_a_request_hashes_its_samples_as_little_endian_float32_unless_told():
    samples = np.linspace(-1, 1, 160)
    request = Request(samples, "p")
    expected = hashlib.sha256(samples.astype("<f4").tobytes()).hexdigest()
    assert request.audio_hash == expected == Request(samples.astype(np.float32), "q").audio_hash
    assert request.name == expected[:12] and Request(samples, "p", "item-9").name == "item-9"
    assert Request(samples, "p", audio_hash="given").audio_hash == "given"
    assert request.loaded and Request(NOT_LOADED, "p").loaded  # no source: nothing to read
    assert {request: 1}[request] == 1  # hashed by identity: its samples are an array
    with pytest.raises(ValueError, match="a request whose audio is not loaded needs its audio_hash"):
        Request(NOT_LOADED, "p", source=Path("a.wav"))


def test_a_request_reads_its_clip_from_its_source_once_asked_keeping_its_hash(tmp_path):
    import soundfile as sf

    clip = (0.25 * np.sin(np.arange(1_600) / 7)).astype(np.float32)
    sf.write(tmp_path / "a.wav", clip, 16_000, subtype="FLOAT")
    unread = Request(NOT_LOADED, "p", "a", "file-hash", tmp_path / "a.wav")
    read = unread.with_audio()
    assert not unread.loaded and read.loaded and read.audio_hash == "file-hash"
    assert np.array_equal(read.audio, clip) and read.with_audio() is read
    one_sample = unread.with_samples(clip[:1])
    assert one_sample.loaded and one_sample.with_audio() is one_sample


def test_defaults_of_what_a_backend_returns_and_can_do():
    from harness.models.api import Candidate, Capabilities, LabelScores

    assert Candidate("x", 1, -1.0).finite
    assert dataclasses.asdict(Capabilities()) == {
        "audio": True, "logprobs": True, "n_candidates": True, "beam_search": True,
        "label_logprobs": True, "structured_output": False}
    failed = LabelScores.failed(3, "why")
    assert failed.logprobs.shape == (3,) and np.isnan(failed.logprobs).all()
    assert failed.error == "why"


def test_the_records_are_frozen():
    from harness.models.api import Candidate, Capabilities, Decoding, Generation, LabelScores, ModelInfo

    for value in (Decoding(), Request(NOT_LOADED, "p"), Candidate("x", 1, 0.0), Generation(),
                  LabelScores(np.zeros(2)), Capabilities(), ModelInfo("m", "r")):
        field = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)
