"""Bad audio inside an otherwise good corpus: item-level records, nothing else changes."""

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.data import load_dataset  # noqa: E402
from harness.models import get_model  # noqa: E402
from harness.strategies import run_strategy  # noqa: E402
from tests.helpers import corpus_copy  # noqa: E402


def damage(root, dataset):
    """Replace 13 clips; returns {item id: expected outcome ('error' or 'note') and match}."""
    wav = {item.id: item.audio_path for item in dataset}
    ids = list(wav)
    clean, sr = sf.read(wav[ids[0]], dtype="float32")
    t = np.arange(int(1.5 * 8000)) / 8000
    cases = {
        ids[0]: ("error", "unreadable", lambda p: p.write_bytes(b"")),
        ids[1]: ("error", "unreadable", lambda p: p.write_bytes(p.read_bytes()[:30])),
        ids[2]: ("error", "unreadable", lambda p: p.write_text("this is a text file\n")),
        ids[3]: ("note", "resampled from 8000 Hz", lambda p: sf.write(p, 0.2 * np.sin(900 * t), 8000)),
        ids[4]: ("note", "resampled from 44100 Hz", lambda p: sf.write(p, clean[:20000], 44100)),
        ids[5]: ("note", "resampled from 48000 Hz", lambda p: sf.write(p, clean[:20000], 48000)),
        ids[6]: ("note", "2 channels down-mixed", lambda p: sf.write(p, np.stack([clean, clean], 1), sr)),
        ids[7]: ("fine", "", lambda p: sf.write(p, clean, sr, subtype="PCM_24")),
        ids[8]: ("error", "NaN or infinite", lambda p: sf.write(
            p, np.where(np.arange(clean.size) == 5, np.nan, clean), sr, subtype="FLOAT")),
        ids[9]: ("error", "NaN or infinite", lambda p: sf.write(
            p, np.where(np.arange(clean.size) == 5, np.inf, clean), sr, subtype="FLOAT")),
        ids[10]: ("note", "truncated to the model's 30 s", lambda p: sf.write(
            p, np.resize(clean, 16_000 * 600), sr)),
        ids[11]: ("error", "audio file not found", lambda p: p.unlink()),
        ids[12]: ("error", "holds no samples", lambda p: sf.write(p, np.zeros(0), sr)),
    }
    for item_id, (_, _, make) in cases.items():
        make(wav[item_id])
    return cases


def test_bad_clips_become_item_records_and_good_items_are_unchanged(tmp_path, record_property):
    model = get_model("tiny-qwen2-audio")
    reference = {r.item_id: r for r in run_strategy("base", model, load_dataset("crema_d"))}
    root = corpus_copy("crema_d", tmp_path)
    cases = damage(root, load_dataset("crema_d", root))
    results = {r.item_id: r for r in run_strategy("base", model, load_dataset("crema_d", root))}
    assert len(results) == len(reference)  # no item lost
    for item_id, (outcome, match, _) in cases.items():
        r = results[item_id]
        if outcome == "error":
            assert r.error and f"{item_id}.wav" in r.error and match in r.error, r.error
        elif outcome == "note":
            assert r.error is None and any(match in n for n in r.notes), r.notes
        else:
            assert r.error is None and not r.notes
    untouched = [i for i in reference if i not in cases]
    for item_id in untouched:
        np.testing.assert_array_equal(results[item_id].probs, reference[item_id].probs)
        ours, theirs = results[item_id].candidates[0], reference[item_id].candidates[0]
        assert ours["text"] == theirs["text"]  # α moves in the 7th digit with the batch's padding
        assert ours["logprob"] == pytest.approx(theirs["logprob"], abs=1e-4)
    errors = sum(r.error is not None for r in results.values())
    notes = sum(bool(r.notes) for r in results.values())
    record_property("reliability", f"bad audio: {len(cases)} damaged clips in a {len(results)}-item "
                                   f"corpus, {errors} item errors recorded, {notes} conversions "
                                   f"noted, {len(untouched)} good items identical, items lost 0")
