"""What a cell's record says about the run behind it: its seconds, the commit and the versions it
ran with, the defaults it was summarised under, the items a ``--limit`` keeps, and what is refused
before any model is built."""

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import harness
from harness.data import load_dataset
from harness.runner import NothingToEvaluate, stratified_subsample, summarize_cell
from harness.runner import evaluate as evaluate_module
from harness.strategies import ItemResult


def test_a_cells_seconds_are_those_its_run_took():
    from tests.fakes import ScriptedModel
    from tests.strategies.test_stream import answers

    start = time.perf_counter()
    record = harness.evaluate(ScriptedModel(answers), load_dataset("crema_d"), "base",
                              n_resamples=5)
    assert 0 < record.seconds <= time.perf_counter() - start


def test_a_record_names_the_commit_and_the_versions_it_ran_with(monkeypatch):
    import importlib.metadata

    record = harness.evaluate("uniform", "crema_d", n_resamples=5)
    here = Path(evaluate_module.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=here).stdout.strip() or None
    except OSError:  # no git on this machine: the record says None too
        head = None
    assert record.meta["git_commit"] == head
    versions = record.meta["versions"]
    assert versions["harness"] == harness.__version__
    assert versions["numpy"] == importlib.metadata.version("numpy") == np.__version__

    def answered(stdout):
        return lambda *args, **kwargs: subprocess.CompletedProcess(args, 128, stdout, "fatal")

    monkeypatch.setattr(subprocess, "run", answered(""))  # not a checkout: no commit, not ""
    assert evaluate_module._git_commit.__wrapped__() is None
    monkeypatch.setattr(subprocess, "run", answered("abc123\n"))
    assert evaluate_module._git_commit.__wrapped__() == "abc123"

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert evaluate_module._git_commit.__wrapped__() is None


def test_the_defaults_are_1000_resamples_seed_0_and_one_resample_is_allowed():
    # under the percentile interval: the expanded one's level over 26 items draws more than
    # 1,000 resamples whatever is asked, and would not tell 1,000 from 1,001
    dataset, plain = load_dataset("crema_d"), "percentile"
    assert harness.evaluate("uniform", dataset, interval=plain).metrics == harness.evaluate(
        "uniform", dataset, n_resamples=1000, interval=plain).metrics
    k = len(dataset.labels)
    results = [ItemResult(item.id, probs=np.full(k, 1 / k), rule="chance") for item in dataset]
    assert summarize_cell(dataset, results) == summarize_cell(dataset, results, 1000, 0)
    assert summarize_cell(dataset, results, interval=plain) == summarize_cell(
        dataset, results, 1000, 0, interval=plain)
    once = harness.evaluate("uniform", dataset, n_resamples=1).metrics
    assert once.n_items == len(dataset) and once.n_resamples == 1  # the record says how many


def test_an_unknown_interval_is_refused_before_the_model_is_built():
    with pytest.raises(ValueError, match="interval"):
        harness.evaluate("no-such-model", "crema_d", "base", interval="bca")


@pytest.mark.parametrize(("skipped", "said"), [
    ({"a": 1, "b": 3, "c": 2}, "6 items left out on purpose (b: 3; c: 2; a: 1); "),
    ({"a": 1, "b": 3, "c": 2, "d": 4}, "10 items left out on purpose (d: 4; b: 3; c: 2; ...); "),
])
def test_an_empty_corpus_names_its_three_commonest_reasons_and_its_first_problem(skipped, said):
    from harness.runner.evaluate import _check_not_empty

    class Empty:
        name, root = "corpus", "/data/corpus"

        def __len__(self):
            return 0

        def left_out(self):
            return {"skipped": skipped, "problems": {"error": 2},
                    "first_problems": ["x.wav: unreadable", "y.wav: empty"]}

    with pytest.raises(NothingToEvaluate) as raised:
        _check_not_empty(Empty())
    assert str(raised.value) == ("corpus: no item to evaluate; the loader kept none of "
                                 f"/data/corpus: {said}2 problems that dropped data, the first: "
                                 "x.wav: unreadable")


def test_a_limit_keeps_the_van_der_corput_ranks_and_all_of_the_corpus_at_its_size():
    dataset = load_dataset("crema_d")  # 26 items: ranks 0 and 25, then 16, 8, 24, 4, 20, 12
    order = sorted(range(len(dataset)), key=lambda i: (dataset[i].entropy, dataset[i].id))
    for limit, ranks in ((2, [0, 25]), (5, [0, 25, 16, 8, 24]), (8, [0, 25, 16, 8, 24, 4, 20, 12])):
        kept = stratified_subsample(dataset, limit)
        assert [item.id for item in kept] == [dataset[i].id for i in sorted(order[r] for r in ranks)]
        assert kept.drawn_from is not None
    assert stratified_subsample(dataset, len(dataset)) is dataset


def test_a_cell_counts_its_items_errors_notes_and_tokens(tmp_path):
    import soundfile as sf

    from tests.fakes import ScriptedModel
    from tests.helpers import corpus_copy
    from tests.strategies.test_stream import answers

    root = corpus_copy("crema_d", tmp_path)
    clips = sorted((root / "AudioWAV").glob("*.wav"))
    clips[0].write_bytes(b"RIFF" + bytes(40))  # unreadable
    samples, rate = sf.read(clips[1])
    sf.write(clips[1], np.column_stack([samples, samples]), rate)  # stereo: mixed down, noted
    dataset = load_dataset("crema_d", root)
    record = harness.evaluate(ScriptedModel(answers), dataset, "base", n_resamples=5)
    by_clip = {Path(item.audio_path).name: row for item, row in zip(dataset, record.items)}
    broken, mixed = by_clip[clips[0].name], by_clip[clips[1].name]
    assert broken.error is not None and mixed.error is None and mixed.notes
    assert record.metrics.errors == sum(i.error is not None for i in record.items) == 1
    assert record.metrics.noted == sum(bool(i.notes) for i in record.items) >= 1
    assert record.metrics.tokens == sum(i.tokens for i in record.items) > 0


def test_a_verifier_may_be_named(monkeypatch):
    from harness.models import registry
    from tests.strategies.test_stream import model

    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    registry.register("scripted-verifier")(model)
    dataset = load_dataset("crema_d")[:4]
    named = harness.evaluate(model(), dataset, "alm-v", verifier="scripted-verifier",
                             n_resamples=5)
    built = harness.evaluate(model(), dataset, "alm-v", verifier=model(), n_resamples=5)
    assert named.metrics == built.metrics and named.meta["verifier"] == built.meta["verifier"]


def test_a_cell_counts_the_candidates_its_verifier_left_unscored():
    from tests.fakes import ScriptedModel
    from tests.strategies.test_stream import model

    dataset = load_dataset("crema_d")[:4]
    unsure = ScriptedModel(lambda request, decoding: [("unsure", -1.0)], name="unsure-verifier")
    record = harness.evaluate(model(), dataset, "alm-v", verifier=unsure, n_resamples=5)
    assert record.metrics.verifier_unscored >= record.metrics.n_valid > 0  # a candidate each
    ties = record.metrics.verifier["ties"]  # none scored: the top beam under either rule
    assert {k: v for k, v in record.metrics.verifier.items() if k != "ties"} == {
        "scored": 0, "items": 0, "top_shared": 0, "all_equal": 0, "common": []}  # said, not left out
    assert ties["first"] == {k: ties["mean"][k] for k in ("n", "js", "bc", "r2")}
    assert ties["mean"]["js_change_ci"] == [0.0, 0.0]
    scored = harness.evaluate(model(), dataset, "alm-v", verifier=model(), n_resamples=5)
    assert scored.metrics.verifier_unscored == 0
    use = scored.metrics.verifier
    assert use["items"] == scored.metrics.n_valid == 4 and use["scored"] >= 8
    assert sum(n for _, n in use["common"]) <= use["scored"]
    assert not harness.evaluate(model(), dataset, "bon", n_resamples=5).metrics.verifier


@pytest.mark.parametrize("unknown", [False, True])
def test_a_cells_cost_is_its_items_cost_and_unknown_if_one_items_is(unknown):
    from harness.models.api import Candidate, Capabilities, Generation, ModelInfo

    class Paid:
        info = ModelInfo("paid", "test", "float32", "cpu", Capabilities())

        def generate(self, requests, decoding):
            return [Generation((Candidate('{"Anger": 1}', 4, -1.0),), usage={
                "prompt_tokens": 10, "completion_tokens": 4,
                "cost_usd": None if unknown and n == 0 else 0.25}) for n, r in enumerate(requests)]

    record = harness.evaluate(Paid(), load_dataset("crema_d")[:4], "base", n_resamples=5)
    assert record.metrics.cost_usd == (None if unknown else 1.0)
