"""The chance baselines: what each predicts, and what the annotator reference is scored against."""

from pathlib import Path

import numpy as np
import pytest

from harness.baselines import ChanceBaseline, annotator, label_prior, predict, rater_votes, uniform
from harness.data import Dataset, Item

LABELS = ("a", "b", "c")


def corpus(votes, meta=None):
    items = [Item(f"i{n}", Path("/nowhere.wav"), "", v, LABELS, (meta or {}).get(n, {}))
             for n, v in enumerate(votes)]
    return Dataset("mine", LABELS, items, Path("/nowhere"))


def test_uniform_and_the_label_prior_the_mean_of_the_items_distributions():
    """An item of 10 votes weighs as much as one of 2: the prior is the mean distribution, not
    the pooled votes (those would give a 10/12 share to 'a')."""
    dataset = corpus([[10, 0, 0], [0, 2, 0]])
    np.testing.assert_allclose(uniform(dataset), np.full((2, 3), 1 / 3))
    np.testing.assert_allclose(label_prior(dataset), [[0.5, 0.5, 0.0]] * 2)
    np.testing.assert_allclose(predict("label-prior", dataset), label_prior(dataset))
    np.testing.assert_allclose(predict("uniform", dataset), uniform(dataset))
    with pytest.raises(ValueError, match="unknown baseline 'chance'"):
        ChanceBaseline("chance")


def test_the_annotator_reference_holds_one_rater_out_and_scores_it_against_the_others():
    raters = {0: {"rater_votes": [[1, 0, 0], [0, 1, 0], [0, 1, 0]]}}  # IEMOCAP keeps each rater's
    dataset = corpus([[1, 2, 0], [0, 0, 3], [0, 1, 0]], raters)  # the others: one vote a rater
    preds, targets = annotator(dataset, seed=0)
    for row in range(2):
        held_out = int(np.argmax(preds[row]))
        np.testing.assert_allclose(targets[row] + np.eye(3)[held_out], dataset[row].votes)
    assert np.isnan(preds[2]).all()  # one rater: nobody to predict
    again, _ = annotator(dataset, seed=0)
    np.testing.assert_array_equal(again[:2], preds[:2])  # drawn by the seed and the item's id
    np.testing.assert_array_equal(annotator(dataset)[0], preds)  # seed 0 unless told
    np.testing.assert_array_equal(predict("annotator", dataset), preds)
    np.testing.assert_array_equal(ChanceBaseline("annotator").predict(dataset), preds)
    with pytest.raises(ValueError, match="unknown baseline 'Annotator'"):
        predict("Annotator", dataset)
    assert any(not np.array_equal(annotator(dataset, seed=s)[0][0], preds[0]) for s in range(1, 20))


def test_each_raters_own_votes_are_the_raters_where_the_corpus_keeps_them():
    """IEMOCAP's raters may name two emotions each: two raters, not the three the counts make;
    a rater who named nothing in the label set leaves nobody to predict when held in."""
    kept = {0: {"rater_votes": [[1, 1, 0], [0, 1, 0]]}, 1: {"rater_votes": [[0, 0, 0], [0, 0, 0]]}}
    dataset = corpus([[1, 2, 0], [0, 0, 0.0001]], kept)
    assert [v.tolist() for v in rater_votes(dataset[0])] == [[1, 1, 0], [0, 1, 0]]
    preds, targets = annotator(dataset, seed=0)
    held_out = 1 - int(np.argmax(preds[0]) == 0)  # [1, 1, 0] is Anger by its first label
    assert targets[0].tolist() == kept[0]["rater_votes"][1 - held_out]
    assert np.isnan(preds[1]).all()  # the others hold no vote: no target to score against


def test_two_raters_are_enough_and_fractional_counts_without_raters_are_not():
    """With two raters, the one held out is predicted from the other's single vote; counts that
    are not whole (split votes) with no per-rater record cannot be split into raters."""
    dataset = corpus([[1, 1, 0], [0.5, 1.5, 0]])
    preds, targets = annotator(dataset, seed=0)
    assert preds[0].sum() == 1 and targets[0].sum() == 1  # one vote each side
    np.testing.assert_allclose(preds[0] + targets[0], [1, 1, 0])
    assert np.isnan(preds[1]).all()


def test_a_chance_baseline_runs_base_and_refuses_what_needs_a_generating_model():
    from harness.data import load_dataset
    from harness.models import get_model
    from harness.strategies import StrategyUnsupported, run_strategy

    crema = load_dataset("crema_d")[:3]
    for name in ("uniform", "label-prior", "annotator"):
        model = get_model(name)
        assert (model.info.name, model.info.revision) == (name, "chance")
        assert not any(vars(model.info.capabilities).values())  # it hears nothing, nor decodes
        assert len(run_strategy("base", model, crema)) == 3
        for strategy, needs in (("bon", "beam_search, logprobs"), ("readout", "label_logprobs"),
                                ("sample-n", "n_candidates"), ("alm-v", "beam_search")):
            with pytest.raises(StrategyUnsupported, match=f"^{name} has no {needs}: {strategy} "
                                                          "cannot run on it"):
                run_strategy(strategy, model, crema, verifier=model)
