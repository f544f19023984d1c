"""``bench.overhead``'s cell beside a waiting model runs on a small corpus, and its model waits
what it says it waited."""

import re

from bench.instant_model import WaitingModel
from harness.models.api import Decoding, Request


def test_the_waiting_model_waits_per_request_and_answers_as_the_instant_one(tmp_path, capsys,
                                                                          monkeypatch):
    import bench.overhead as overhead
    from bench.synthetic_corpus import write_corpus
    from harness.data import load_dataset

    model = WaitingModel(("Anger", "Sadness"), 0.002)
    requests = [Request(None, "prompt", f"item{i}") for i in range(5)]
    answers = model.generate(requests, Decoding(mode="beam", num_candidates=3))
    assert model.waited == 0.002 * 5 and model.requests == 5
    assert [len(a.candidates) for a in answers] == [3] * 5
    dataset = load_dataset("msp_podcast", write_corpus(tmp_path / "corpus", 12, seconds=1.0))
    monkeypatch.setattr(overhead, "REPEATS", 1)
    overhead.beside_a_model(dataset, tmp_path, strategies=("w-bon",))
    lines = [line for line in capsys.readouterr().out.splitlines() if "w-bon" in line]
    assert len(lines) == len(overhead.WAITS)
    assert "model  1000 us a request" in lines[-1] and "the model waited     12 ms" in lines[-1]


def test_every_stage_is_timed_on_its_own(tmp_path, capsys):
    """Each stage's line, a rerun's chunks (clip rows from the cache) and parsing alone
    included, with a rate."""
    import bench.overhead as overhead
    from bench.synthetic_corpus import write_corpus
    from harness.data import load_dataset

    dataset = load_dataset("msp_podcast", write_corpus(tmp_path / "corpus", 12, seconds=1.0))
    overhead.stage_rates(dataset, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "stages alone, 12 items, items/s:"
    rates = {line[:50].strip(): float(line[50:].replace(",", "")) for line in lines[2:]}
    assert {"chunks, a rerun (clip rows from the cache)",
            "parse alone (w-bon's 5 beams, parse_verdict)", "parse + combine (w-bon, 5 beams)",
            "cache lookups (w-bon)"} <= set(rates)
    assert len(rates) == 14 and all(rate > 0 for rate in rates.values())


def test_the_reader_beside_its_consumer_prints_the_whole_time_and_the_wait(tmp_path, capsys,
                                                                           monkeypatch):
    """Both consumers' lines, each with its whole time and, within it, its wait for clips."""
    import bench.overhead as overhead
    from bench.synthetic_corpus import write_corpus
    from harness.data import load_dataset

    dataset = load_dataset("msp_podcast", write_corpus(tmp_path / "corpus", 12, seconds=1.0))
    monkeypatch.setattr(overhead, "REPEATS", 1)
    overhead.reader_beside_a_consumer(dataset, per_item=1e-3)
    lines = [line for line in capsys.readouterr().out.splitlines() if "ms in all" in line]
    assert [line.split()[1] for line in lines] == ["waiting,", "computing"]
    for line in lines:
        found = re.search(r"(\d+) ms in all, +(\d+) ms of it waiting", line)
        assert found, line
        total, waited = int(found[1]), int(found[2])
        assert total >= 12 and 0 <= waited <= total  # 12 items of 1 ms each, at least
