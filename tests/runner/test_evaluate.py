import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harness
from harness import metrics
from harness.data import load_dataset
from harness.record import SCHEMA_VERSION, CellRecord, RecordSchemaError, read_record, write_record
from harness.runner import stratified_subsample
from harness.strategies import StrategyUnsupported


def test_stratified_subsample_is_deterministic_and_spans_the_entropy_range():
    dataset = load_dataset("msp_podcast")
    sub = stratified_subsample(dataset, 7)
    assert len(sub) == 7 and sub.ids == stratified_subsample(dataset, 7).ids
    h_all = [it.entropy for it in dataset]
    h_sub = [it.entropy for it in sub]
    assert min(h_sub) == min(h_all) and max(h_sub) == max(h_all)
    assert stratified_subsample(dataset, None) is dataset
    # nested: a larger limit keeps a smaller one's items (its cache and its items to compare on)
    sizes = range(1, len(dataset))
    kept = [set(stratified_subsample(dataset, n).ids) for n in sizes]
    assert [len(k) for k in kept] == list(sizes)
    assert all(small < large for small, large in zip(kept, kept[1:]))
    ranked = sorted(dataset, key=lambda it: (it.entropy, it.id))  # 26 items: 13 in each half
    assert sum(it.id in kept[9] for it in ranked[:13]) == 5  # 10 items: 5 from each half
    record = harness.evaluate("uniform", sub, n_resamples=10)
    assert (record.meta["dataset"]["n_items"], record.meta["dataset"]["drawn_from"]) == (7, len(dataset))
    assert harness.evaluate("uniform", dataset, n_resamples=10).meta["dataset"]["drawn_from"] is None
    from harness.report.tables import items_table

    assert items_table([record])[1][0][2][0] == f"7 of {len(dataset)}"


def _levels(dataset):
    return metrics.entropy_bins(np.array([item.entropy for item in dataset]), 5)[0]


def test_a_chance_cell_record_and_its_file(tmp_path):
    dataset = load_dataset("crema_d")
    record = harness.evaluate("label-prior", dataset, n_resamples=100)
    m = record.metrics
    assert record.cell == "label-prior-crema_d-base" and record.schema_version == SCHEMA_VERSION
    assert m.valid == 1.0 and m.rules == {"chance": 26} and m.errors == 0
    assert sum(m.bins["counts"]) == 26 and len(m.bins["js"]) == 5
    for level, (count, median, interval) in enumerate(zip(m.bins["counts"], m.bins["js"],
                                                          m.bins["js_ci"])):
        in_level = [i.scores["js"] for i, b in zip(record.items, _levels(dataset)) if b == level]
        assert len(in_level) == count and (median is None or median == np.median(in_level))
        assert (interval is None) == (count < 6)  # too few items: no 95% interval
        assert interval is None or interval[0] <= median <= interval[1]
    assert record.meta["dataset"]["manifest"] == dataset.manifest_hash()
    assert len(record.items) == 26 and np.isclose(sum(record.items[0].probs), 1.0)
    path = write_record(record, tmp_path)
    assert path == tmp_path / "cells" / "label-prior-crema_d-base.json" and path.is_file()
    assert read_record(path) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.cell = "x"


def test_a_record_of_another_schema_version_is_refused_naming_both(tmp_path):
    path = write_record(harness.evaluate("uniform", "crema_d", n_resamples=10), tmp_path)
    data = json.loads(path.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(RecordSchemaError, match=f"schema version {SCHEMA_VERSION + 1}; this harness "
                                                f"reads version {SCHEMA_VERSION}"):
        CellRecord.from_json(data)


def test_evaluate_takes_names_or_objects_and_a_cache_path(tmp_path):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from harness.models import get_model

    by_name = harness.evaluate("tiny-qwen2-audio", "iemocap", "base", cache=tmp_path / "c.sqlite",
                               n_resamples=10)
    model = get_model("tiny-qwen2-audio")
    by_object = harness.evaluate(model, load_dataset("iemocap"), "base", n_resamples=10)
    assert by_name.items == by_object.items and by_name.metrics == by_object.metrics
    assert (tmp_path / "c.sqlite").is_file()


def test_chance_baselines_run_only_as_the_chance_cell():
    with pytest.raises(StrategyUnsupported, match="uniform is a chance baseline"):
        harness.evaluate("uniform", "crema_d", "w-bon")


def test_the_ambiguity_levels_are_a_recorded_choice():
    dataset = load_dataset("msp_podcast")
    width = harness.evaluate("uniform", dataset, n_resamples=10).metrics.bins
    quantile = harness.evaluate("uniform", dataset, n_resamples=10,
                                entropy_bins="quantile").metrics.bins
    assert (width["method"], quantile["method"]) == ("width", "quantile")
    assert sum(width["counts"]) == sum(quantile["counts"]) == len(dataset)
    assert width["edges"] != quantile["edges"]


def test_w_bon_records_its_result_under_each_alpha_from_the_same_candidates():
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from harness.models import get_model
    from harness.resampling import resamples_for, sign_flip_p
    from harness.strategies import StrategyConfig

    model = get_model("tiny-qwen2-audio")
    raw = harness.evaluate(model, "iemocap", "w-bon", n_resamples=10)
    uniform = harness.evaluate(model, "iemocap", "w-bon", n_resamples=10,
                               config=StrategyConfig(alpha="uniform"))
    table = raw.metrics.alpha_sensitivity
    assert set(table) == {"raw", "mean", "uniform"} and raw.metrics.n_valid == raw.metrics.n_items
    assert table["raw"]["js"] == pytest.approx(raw.metrics.mean("js"))
    assert table["uniform"]["js"] == pytest.approx(uniform.metrics.mean("js"))
    per_item = {i.id: i.scores["js"] for i in uniform.items}
    change = np.array([per_item[i.id] - i.scores["js"] for i in raw.items])
    assert table["uniform"]["js_change_ci"] == pytest.approx(list(metrics.bootstrap_ci(
        change, n_resamples=10, seed=0)))  # paired: the same items' changes, resampled
    assert "js_change_ci" not in table["raw"] and table["raw"]["n"] == raw.metrics.n_items
    (up, down), = sign_flip_p(change, resamples_for(0.95, 10), 0)  # 800: 20 beyond 2.5%
    assert table["uniform"]["js_change_p"] == min(1.0, 2 * min(up, down))
    plain = harness.evaluate(model, "iemocap", "w-bon", n_resamples=10, interval="percentile")
    assert "js_change_p" not in plain.metrics.alpha_sensitivity["uniform"]  # the CI alone
    assert uniform.meta["strategy_config"]["alpha"] == "uniform"
    for record, alpha in ((raw, "raw"), (uniform, "uniform")):  # each item's, as its record has it
        assert table[alpha]["weight_max"] == pytest.approx(np.mean([i.weight_max for i in record.items]))
    assert table["uniform"]["weight_max"] == pytest.approx(np.mean(  # 1/B of its valid beams
        [1 / sum(c["valid"] for c in item["candidates"]) for item in uniform.evidence.items]))
    assert not harness.evaluate(model, "iemocap", "base", n_resamples=10).metrics.alpha_sensitivity


def test_alm_v_records_its_result_under_each_tie_rule_from_the_same_candidates():
    """Three one-label beams per item; the verifier gives Anger and Fear 0.9 on even items (a
    tie: ``first`` takes Anger, ``mean`` the two's mean) and Fear alone 0.9 on odd ones."""
    from harness.strategies import StrategyConfig
    from tests.fakes import ScriptedModel

    dataset = load_dataset("crema_d")
    even = {item.id for item in dataset[::2]}

    def beams(request, decoding):
        return [(f'{{"{label}": 1.0}}', -1.0 - n)
                for n, label in enumerate(("Anger", "Fear", "Sadness"))]

    def verifier(request, decoding):
        top = ('"Fear"', '"Anger"') if request.item_id in even else ('"Fear"',)
        return [("0.9" if any(label in request.prompt for label in top) else "0.2", -1.0)]

    model, judge = ScriptedModel(beams), ScriptedModel(verifier, name="judge")
    first, mean = (harness.evaluate(model, dataset, "alm-v", verifier=judge, n_resamples=10,
                                    config=StrategyConfig(verifier_ties=ties))
                   for ties in ("first", "mean"))
    ties = first.metrics.verifier["ties"]
    assert first.metrics.verifier["top_shared"] == len(even)
    assert mean.metrics.verifier["ties"] == ties  # the same candidates, whichever rule was used
    for rule, cell in (("first", first), ("mean", mean)):
        assert ties[rule]["n"] == cell.metrics.n_valid == len(dataset)
        assert ties[rule]["js"] == pytest.approx(cell.metrics.mean("js"))
    per_item = {i.id: i.scores["js"] for i in mean.items}
    change = np.array([per_item[i.id] - i.scores["js"] for i in first.items])
    tied = np.array([i.id in even for i in first.items])
    assert not change[~tied].any() and change[tied].any()  # only a tie changes
    assert ties["mean"]["js_change_ci"] == pytest.approx(list(metrics.bootstrap_ci(
        change, n_resamples=10, seed=0)))
    assert "js_change_ci" not in ties["first"]
    weighted = harness.evaluate(model, dataset, "w-alm-v", verifier=judge, n_resamples=10)
    assert "ties" not in weighted.metrics.verifier and weighted.metrics.verifier["items"]


def test_an_item_whose_beams_all_have_alpha_minus_infinity_costs_itself_not_the_cell():
    """Under ``alpha="uniform"`` such an item has its mixture; under ``raw`` and ``mean`` no
    beam has a weight: the item is left out of the α comparison, and the cell is recorded."""
    import math

    from harness.models.api import Candidate, Capabilities, Generation, ModelInfo
    from harness.strategies import StrategyConfig

    class MinusInfinityFirst:
        info = ModelInfo("minus-infinity", "test", "float32", "cpu", Capabilities())

        def generate(self, requests, decoding):
            return [Generation(tuple(
                Candidate('{"Anger": 0.75, "Sadness": 0.25}', 12,
                          -math.inf if r.item_id == first else -1.0 - n)
                for n in range(decoding.num_candidates))) for r in requests]

    dataset = load_dataset("crema_d")
    first = dataset[0].id
    for alpha, valid in (("uniform", 1.0), ("raw", (len(dataset) - 1) / len(dataset))):
        record = harness.evaluate(MinusInfinityFirst(), dataset, "w-bon", n_resamples=10,
                                  config=StrategyConfig(alpha=alpha))
        assert record.metrics.valid == pytest.approx(valid), alpha
        table = record.metrics.alpha_sensitivity
        assert set(table) == {"raw", "mean", "uniform"}
        # the same beams' text under every α: no item changes, and a two-sided p stays at 1
        assert {table[a][f"{m}_change_p"] for a in ("mean", "uniform") for m in ("js", "bc", "r2")
                } == {1.0}
        assert (record.items[0].error is None) == (alpha == "uniform")


def test_the_annotator_reference_scores_one_held_out_rater_against_the_others():
    from harness.baselines import annotator, rater_votes

    dataset = load_dataset("msp_podcast")
    preds, targets = annotator(dataset)
    again, _ = annotator(dataset)
    np.testing.assert_array_equal(preds, again)  # deterministic by seed and item id
    for item, p, t in zip(dataset, preds, targets):
        raters = rater_votes(item)
        if len(raters) < 2:
            assert np.isnan(p).all()
            continue
        assert t.sum() == item.votes.sum() - 1  # one worker's vote held out
        assert p.sum() == 1 and p.max() == 1  # a one-hot
    iemocap = load_dataset("iemocap")
    assert all(len(rater_votes(item)) == len(item.meta["rater_votes"]) for item in iemocap)
    record = harness.evaluate("annotator", iemocap, n_resamples=10)
    assert record.cell == "annotator-iemocap-base" and record.metrics.n_valid == record.metrics.n_items


def test_an_item_with_one_rater_has_no_annotator_prediction():
    from harness.baselines import annotator

    dataset = load_dataset("crema_d")
    one = dataset.with_votes(np.array([np.eye(6)[0] if i == 0 else item.votes
                                       for i, item in enumerate(dataset)]))
    preds, _ = annotator(one)
    assert np.isnan(preds[0]).all() and not np.isnan(preds[1:]).any()


def test_items_without_a_transcript_are_counted():
    assert harness.evaluate("uniform", "msp_podcast", n_resamples=5).metrics.no_transcript == 1
    assert harness.evaluate("uniform", "iemocap", n_resamples=5).metrics.no_transcript == 0


def test_a_run_stopped_mid_way_closes_its_spool_and_the_cache_it_opened(tmp_path, monkeypatch):
    from harness.cache import GenerationCache
    from harness.runner import evaluate as evaluate_module
    from tests.fakes import ScriptedModel

    closed: list[str] = []
    monkeypatch.setattr(evaluate_module.CellItems, "close",
                        lambda self: closed.append("spool"))
    real_close = GenerationCache.close
    monkeypatch.setattr(GenerationCache, "close",
                        lambda self: (closed.append("cache"), real_close(self)))

    def stop(request, decoding):
        raise KeyboardInterrupt  # the user's Ctrl-C in the model's call

    with pytest.raises(KeyboardInterrupt):
        harness.evaluate(ScriptedModel(stop), "crema_d", cache=tmp_path / "c.sqlite",
                         n_resamples=10)
    assert closed == ["spool", "cache"]  # the spool first, while the cache is still open
    given = GenerationCache(tmp_path / "given.sqlite")
    closed.clear()
    with pytest.raises(KeyboardInterrupt):
        harness.evaluate(ScriptedModel(stop), "crema_d", cache=given, n_resamples=10)
    assert closed == ["spool"]  # a cache the caller gave stays the caller's to close
    given.close()


def test_a_corpus_with_no_item_says_what_the_loader_left_out():
    from harness.runner.evaluate import NothingToEvaluate

    empty = load_dataset("msp_podcast", split="Test3").subset([])
    for model in ("uniform", "annotator"):
        with pytest.raises(NothingToEvaluate, match=r"msp_podcast: no item to evaluate; the loader "
                                                    r"kept none of .*: 25 items left out on purpose "
                                                    r"\(split 'Test1' not selected: 8; "):
            harness.evaluate(model, empty, "base")


@pytest.mark.parametrize("n_resamples", [0, -5, "abc", 2.5, True])
def test_a_bad_number_of_resamples_is_refused_before_any_model_runs(n_resamples):
    with pytest.raises(ValueError, match="n_resamples must be a whole number of at least 1"):
        # a model name that does not exist: the check comes before the model is looked up
        harness.evaluate("no-such-model", "crema_d", "base", n_resamples=n_resamples)


def test_the_config_may_be_a_mapping_of_its_fields_and_a_misnamed_one_is_refused_first():
    by_mapping = harness.evaluate("uniform", "crema_d", config={"seed": 3}, n_resamples=10)
    from harness.strategies import StrategyConfig

    by_config = harness.evaluate("uniform", "crema_d", config=StrategyConfig(seed=3), n_resamples=10)
    assert (by_mapping.metrics, by_mapping.items) == (by_config.metrics, by_config.items)
    assert by_mapping.meta["seed"] == 3
    # the model named does not exist: the config is checked before any model is looked up
    with pytest.raises(ValueError, match="unknown strategy argument 'beam'; did you mean 'beams'"):
        harness.evaluate("no-such-model", "crema_d", "bon", config={"beam": 3})
    with pytest.raises(TypeError, match="config must be a StrategyConfig or a mapping of its fields, "
                                        "not list"):
        harness.evaluate("no-such-model", "crema_d", "bon", config=[("beams", 3)])


def test_a_chance_cell_reports_its_progress_as_a_models_does():
    seen: list[int] = []
    harness.evaluate("uniform", "crema_d", progress=seen.append, n_resamples=10)
    assert seen == [26]


def test_a_cache_path_under_home_is_the_users_home_not_a_folder_named_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    harness.evaluate("uniform", "crema_d", cache="~/caches/c.sqlite", n_resamples=10)
    assert (tmp_path / "home" / "caches" / "c.sqlite").is_file() and not (tmp_path / "~").exists()


def test_a_record_counts_the_model_calls_it_computed_and_those_it_read_from_the_cache():
    """So that its seconds say what they cost: w-bon reads bon's beams, a rerun reads all."""
    from harness.cache import GenerationCache
    from tests.fakes import ScriptedModel
    from tests.strategies.test_stream import answers

    dataset, cache = load_dataset("crema_d")[:6], GenerationCache()
    model = ScriptedModel(answers)
    calls = [harness.evaluate(model, dataset, name, cache=cache, n_resamples=5).meta["generations"]
             for name in ("bon", "w-bon", "bon")]
    assert calls == [{"computed": 6, "from_cache": 0}] + [{"computed": 0, "from_cache": 6}] * 2
    verified = [harness.evaluate(model, dataset, "alm-v", verifier=model, cache=cache,
                                 n_resamples=5).meta["generations"] for _ in range(2)]
    asked = verified[0]["computed"]  # the beams and the verifier's scores
    assert asked > 6 and verified == [{"computed": asked, "from_cache": 0},
                                      {"computed": 0, "from_cache": asked}]
    assert "generations" not in harness.evaluate(model, dataset, "base", n_resamples=5).meta


def test_gpu_seconds_count_a_model_on_a_cuda_device_only():
    from tests.fakes import ScriptedModel
    from tests.strategies.test_stream import answers

    dataset = load_dataset("crema_d")[:3]
    cells = {}
    for device in ("cpu", "", "cuda:0"):
        model = ScriptedModel(answers)
        model.info = dataclasses.replace(model.info, device=device)
        cells[device] = harness.evaluate(model, dataset, "base", n_resamples=5)
    assert cells["cpu"].gpu_seconds == cells[""].gpu_seconds == 0.0 < cells["cpu"].seconds
    assert cells["cuda:0"].gpu_seconds == cells["cuda:0"].seconds > 0
    assert harness.evaluate("uniform", dataset, "base", n_resamples=5).gpu_seconds == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=3, max_size=400), st.data())
def test_any_limits_subsample_is_nested_and_spread_over_the_entropy_order(first_votes, data):
    """For any corpus and any two limits: the smaller's items are among the larger's, and each
    fifth of the entropy-sorted corpus holds a fifth of them, give or take 4 (3.2 at worst in
    6,000 random draws up to 3,000 items; a rounding of van der Corput points to ranks, before,
    gave 78/77/65/54/51 of 325 items from 386)."""
    from pathlib import Path

    from harness.data import Dataset, Item

    labels = ("a", "b", "c")
    items = [Item(f"i{n:03d}", Path("/nowhere.wav"), "", [v, 6 - v, 1 + n % 2], labels)
             for n, v in enumerate(first_votes)]
    dataset = Dataset("mine", labels, items, Path("/nowhere"))
    small = data.draw(st.integers(1, len(items) - 1))
    large = data.draw(st.integers(small, len(items) - 1))
    kept = [stratified_subsample(dataset, n).ids for n in (small, large)]
    assert [len(k) for k in kept] == [small, large] and set(kept[0]) <= set(kept[1])
    rank = {it.id: r for r, it in enumerate(sorted(dataset, key=lambda it: (it.entropy, it.id)))}
    fifths = np.bincount([rank[i] * 5 // len(items) for i in kept[1]], minlength=5)
    assert np.abs(fifths - large / 5).max() <= 4


def test_each_valid_item_s_scores_carry_its_accuracy_and_no_valid_item_has_none():
    from harness.runner.evaluate import _per_item, item_scores
    from harness.strategies import ItemResult

    dataset = load_dataset("crema_d")[:3]
    k = len(dataset.labels)
    results = [ItemResult(dataset[0].id, probs=np.eye(k)[1]), ItemResult(dataset[1].id),
               ItemResult(dataset[2].id, probs=np.full(k, 1 / k))]
    scores = item_scores(dataset, results)
    per_item = _per_item(dataset, results, scores)
    assert sorted(per_item) == [0, 2] and set(per_item[0]) == {"js", "jsd", "bc", "r2", "acc"}
    assert (per_item[0]["acc"], per_item[2]["acc"]) == (0.0, 1.0)  # Disgust for Fear; Anger's tie
    none = [ItemResult(item.id) for item in dataset]
    valid, values = item_scores(dataset, none)
    assert valid.size == 0 and values == {} and _per_item(dataset, none, (valid, values)) == {}
