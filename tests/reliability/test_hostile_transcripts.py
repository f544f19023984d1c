"""A transcript far longer than a model's context (a damaged transcription file): the item is
refused with its size before any batch runs, the other items are answered, the cell recorded.
Before, the tiny model ran the 28,000-token prompt (11.7 GiB for a batch of eight on the CPU;
about four times that would have ended the process) and its answer still parsed."""

import re

import pytest

import harness
from harness.data import load_dataset
from tests.helpers import corpus_copy

TRANSCRIPTS = "IEMOCAP_full_release/Session1/dialog/transcriptions/Ses01F_impro01.txt"
RAMBLE = "I said " * 15_000  # 105 kB


def test_a_transcript_past_the_context_is_its_items_error(tmp_path, record_property):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    root = corpus_copy("iemocap", tmp_path)
    path = root / TRANSCRIPTS
    text = path.read_text()
    path.write_text(text.replace("]: Yeah.", "]: Yeah. " + RAMBLE, 1))
    dataset = load_dataset("iemocap", root)[:6]
    assert "Ses01F_impro01_F001" in dataset.ids
    results = {}
    for strategy in ("base", "readout", "alm-v"):
        record = harness.evaluate("tiny-qwen2-audio", dataset, strategy, n_resamples=20,
                                  verifier="tiny-qwen2-audio" if strategy == "alm-v" else None)
        items = {i.id: i for i in record.items}
        error = items["Ses01F_impro01_F001"].error
        assert "characters of text) with room for" in error, (strategy, error)
        assert error.endswith("is longer than the model's context of 4,096 tokens")
        assert record.metrics.errors == 1 and record.metrics.n_valid == len(dataset) - 1
        results[strategy] = error
    tokens = re.search(r"prompt of up to ([\d,]+) tokens", results["base"]).group(1)
    record_property("reliability", f"hostile transcripts: a {len(RAMBLE) // 1000} kB transcript "
                                   f"refused under {', '.join(results)} before the model ran it "
                                   f"(up to {tokens} tokens against a context of 4,096), the "
                                   f"other {len(dataset) - 1} items answered, cells recorded")
