"""Per-item evidence beside each cell's record: every candidate, its scores and weight, the votes."""

import json

import pytest

import harness
import harness.models
from harness.data import load_dataset
from harness.record import RecordError, read_items, read_record, write_record
from harness.runner import stratified_subsample


def strict(line: str):
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))


def test_a_verifier_cell_keeps_every_candidate_with_its_reply_score_and_weight(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    tiny = harness.models.get_model("tiny-qwen2-audio")
    dataset = stratified_subsample(load_dataset("crema_d"), 8)
    record = harness.evaluate(tiny, dataset, "w-alm-v", verifier=tiny, n_resamples=10)
    path = write_record(record, tmp_path)
    header, items = read_items(path.with_suffix(".items.jsonl"))
    assert header["cell"] == record.cell and header["labels"] == list(dataset.labels)
    assert "{transcript}" in header["prompt_templates"]["prompt"]
    assert "{candidate}" in header["prompt_templates"]["verifier"]
    items = list(items)
    assert [i["id"] for i in items] == [i.id for i in dataset]
    for item, source, summary in zip(items, dataset, record.items):
        assert item["human"] == pytest.approx(list(source.soft)) and 0 <= item["level"] < 5
        assert item["probs"] == (None if summary.probs is None else list(summary.probs))
        assert len(item["candidates"]) == 3
        for cand in item["candidates"]:
            assert {"text", "logprob", "rule", "verifier_reply", "verifier_score"} <= set(cand)
        if item["probs"] is not None:
            assert item["scores"] == summary.scores
            assert not any(c.get("chosen") for c in item["candidates"])  # a mixture picks none
            assert sum(c["weight"] for c in item["candidates"] if "weight" in c) == pytest.approx(1.0)
    for line in path.with_suffix(".items.jsonl").read_text().splitlines():
        strict(line)  # no NaN or infinity: a browser's JSON.parse reads every line
    assert read_record(path) == record  # the record itself is unchanged by its evidence


def test_a_chance_cell_has_no_prompt_and_a_damaged_items_file_is_named(tmp_path):
    record = harness.evaluate("uniform", "iemocap", "base", n_resamples=10)
    path = write_record(record, tmp_path).with_suffix(".items.jsonl")
    header, items = read_items(path)
    assert header["prompt_templates"] == {} and len(list(items)) == record.metrics.n_items
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], lines[3][:20], *lines[4:]]) + "\n")
    with pytest.raises(RecordError, match=r"items.jsonl, line 4"):
        list(read_items(path)[1])
    path.write_text("\n".join([*lines[:3], "[1, 2]", *lines[4:]]) + "\n")  # JSON, no item
    with pytest.raises(RecordError, match=r"items.jsonl, line 4: a JSON list, not an object"):
        list(read_items(path)[1])
    with pytest.raises(RecordError, match="nowhere.items.jsonl: not a readable items file"):
        read_items(tmp_path / "nowhere.items.jsonl")
    path.write_text("[]\n")
    with pytest.raises(RecordError, match="not an items file"):
        read_items(path)
    other = dict(json.loads(lines[0]), schema_version=json.loads(lines[0])["schema_version"] + 1)
    path.write_text(json.dumps(other) + "\n")
    with pytest.raises(RecordError, match="not an items file of schema version"):
        read_items(path)  # another schema's header


def test_a_readout_item_keeps_each_labels_score(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    dataset = stratified_subsample(load_dataset("crema_d"), 4)
    record = harness.evaluate("tiny-qwen2-audio", dataset, "readout", n_resamples=10)
    _, items = read_items(write_record(record, tmp_path).with_suffix(".items.jsonl"))
    for item in items:
        [scores] = item["candidates"]
        assert len(scores["label_logprobs"]) == len(dataset.labels)
        assert (scores["rule"], scores["valid"], scores["chosen"]) == ("readout", True, True)
        assert scores["probs"] == pytest.approx(item["probs"])
