import shutil
import subprocess
import sys

import numpy as np
import pytest

from harness.data import CORPORA, Item, load_dataset
from tests.helpers import corpus_copy


def item(votes, labels=("a", "b", "c")):
    return Item("x", "x.wav", "", np.array(votes, dtype=float), labels)


def test_item_properties():
    it = item([2, 1, 1])
    np.testing.assert_allclose(it.soft, [0.5, 0.25, 0.25])
    assert it.majority == "a" and it.entropy == pytest.approx(1.5)
    assert item([1, 1, 0]).majority is None
    assert item([0, 0, 4]).entropy == 0.0
    assert str(item([0, 0, 4]).entropy) == "0.0"  # not -0.0, which records and tables would show
    with pytest.raises(ValueError):
        it.votes[0] = 5  # votes are read-only


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_fixture_loads_cleanly_with_audio(name):
    dataset = load_dataset(name)
    assert len(dataset) >= 24
    # MSP-Podcast's mini copy lacks one transcript file, as real releases lack some
    missing = ["1 of the 28 items have no transcript file"] if name == "msp_podcast" else []
    assert [p.message.split(" (")[0] for p in dataset.problems] == missing
    assert all(p.severity == "warning" for p in dataset.problems)
    assert {it.majority for it in dataset} >= {None}  # each fixture has a tied majority
    for it in dataset:
        audio = it.load_audio()
        assert audio.dtype == np.float32 and 1.0 <= audio.size / 16_000 <= 3.0
        assert np.isfinite(audio).all()
        assert it.votes.sum() > 0 and it.soft.sum() == pytest.approx(1.0)
    assert dataset.votes.shape == (len(dataset), len(dataset.labels))
    np.testing.assert_array_equal(dataset.soft, [it.soft for it in dataset])  # rows sum to 1


def test_environment_variable_sets_the_root(tmp_path, monkeypatch):
    root = corpus_copy("crema_d", tmp_path)
    monkeypatch.setenv("CREMA_D_ROOT", str(root))
    assert load_dataset("crema_d").root == root


def test_manifest_hash_tracks_ids_votes_and_audio(tmp_path):
    root = corpus_copy("crema_d", tmp_path)
    first = load_dataset("crema_d", root)
    assert first.manifest_hash() == load_dataset("crema_d", root).manifest_hash()
    assert len(first.manifest_hash()) == 64
    audio = first[0].audio_path
    audio.write_bytes(audio.read_bytes()[:-2] + b"\x01\x02")
    changed = load_dataset("crema_d", root)
    assert changed.manifest_hash() != first.manifest_hash()
    assert changed.manifest_hash(include_audio=False) == first.manifest_hash(include_audio=False)
    assert first[:5].manifest_hash() != first.manifest_hash()
    from dataclasses import replace

    from harness.data import Dataset

    votes = first.votes.copy()
    votes[3, 0] += 1
    renamed = [replace(item, id=f"{item.id}-b") if n == 3 else item for n, item in enumerate(first)]
    for other in (first.with_votes(votes), Dataset("crema_d", first.labels, renamed, root),
                  Dataset("crema_d_copy", first.labels, list(first), root)):
        for audio in (True, False):  # votes, an id or the name each change it, clips or not
            assert other.manifest_hash(audio) != first.manifest_hash(audio)
    shutil.rmtree(root / "AudioWAV")
    assert load_dataset("crema_d", root).manifest_hash() != first.manifest_hash()


def test_slicing_keeps_the_corpus():
    dataset = load_dataset("iemocap")
    head = dataset[:3]
    assert len(head) == 3 and head.labels == dataset.labels and head.ids == dataset.ids[:3]
    assert head.item_by_id(dataset[2].id) is dataset[2]
    with pytest.raises(KeyError):
        head.item_by_id(dataset[3].id)  # the slice's items only
    # it says how many items the corpus it came from has, through slices of slices and new votes
    assert dataset.drawn_from is None and head.drawn_from == len(dataset)
    assert head[:2].drawn_from == len(dataset)
    assert head.with_votes(head.votes).drawn_from == len(dataset)


def test_unknown_corpus():
    with pytest.raises(ValueError, match="unknown corpus"):
        load_dataset("ravdess")


def test_importing_harness_pulls_in_no_framework_or_sdk():
    code = (
        "import sys, harness, harness.data, harness.parsing, harness.metrics, "
        "harness.aggregate, harness.prompts, harness.report\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'google.genai') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_what_the_loader_left_out_is_summarised_for_the_record(tmp_path):
    from tests.helpers import corpus_copy

    clean = load_dataset("iemocap")
    assert clean.left_out() == {"skipped": dict(clean.skipped),
                                "problems": {"error": 0, "warning": 0}, "first_problems": []}
    root = corpus_copy("iemocap", tmp_path)
    evaluation = root / "IEMOCAP_full_release/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    evaluation.write_text(evaluation.read_text().replace("[3.0000 - 4.7500]", "[3.0000 4.7500", 1))
    damaged = load_dataset("iemocap", root)
    left = damaged.left_out()
    assert left["problems"] == {"error": 1, "warning": 0} and len(damaged) == len(clean) - 1
    assert left["first_problems"][0].startswith(f"error: {evaluation}:3: malformed utterance header")
    assert damaged[:3].left_out() == left  # a subsample keeps the whole corpus's account
    from harness.data import Dataset, Problem

    long = Dataset("x", ["a"], [], tmp_path, problems=[Problem("f", 1, "m" * 1000)] * 5)
    assert [len(p) for p in long.left_out()["first_problems"]] == [300] * 3


def test_an_items_clip_with_its_notes_an_empty_corpus_and_the_repr():
    dataset = load_dataset("crema_d")
    samples, notes = dataset[0].read_audio()
    np.testing.assert_array_equal(samples, dataset[0].load_audio())
    assert samples.dtype == np.float32 and notes == []  # 16 kHz mono already: nothing changed
    empty = dataset[:0]
    assert len(empty) == 0 and empty.votes.shape == (0, 6) and empty.soft.shape == (0, 6)
    assert repr(dataset) == ("Dataset('crema_d', 26 items, labels=['Anger', 'Disgust', 'Fear', "
                             "'Happiness', 'Neutral', 'Sadness'])")
