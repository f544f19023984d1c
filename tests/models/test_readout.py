"""The readout's label tree on its own: every label's tokens laid out after the prompt, each seeing
the prompt and its own earlier tokens only, and the summed log-probabilities it gives equal to
scoring each label apart (a bigram stand-in for the model)."""

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")

from harness.models._readout import LabelTree, score_labels  # noqa: E402

LABELS = [[5, 6, 7], [8], [9, 10]]  # token ids, each label closed by its end-of-turn token


def test_the_tree_lays_out_every_label_s_tokens_after_its_first():
    tree = LabelTree(LABELS, "cpu")
    assert tree.first.tolist() == [5, 8, 9] and (tree.size, tree.depth) == (3, 3)
    assert tree.inputs.tolist() == [5, 6, 9] and tree.targets.tolist() == [6, 7, 10]
    assert tree.owner.tolist() == [0, 0, 2] and tree.offsets.tolist() == [0, 1, 0]
    assert tree.mask.tolist() == [[[True, False, False],   # label 0's first token: itself
                                   [True, True, False],    # its second: both of label 0's
                                   [False, False, True]]]  # label 2's: its own alone
    empty = LabelTree([], "cpu")
    assert (empty.size, empty.depth, empty.first.tolist()) == (0, 0, [])


def test_labels_are_tokenized_without_special_tokens_and_closed_by_the_end_of_turn():
    calls = []

    def tokenizer(text, add_special_tokens):
        calls.append(add_special_tokens)
        return {"input_ids": [ord(c) for c in text]}

    tokenizer.convert_tokens_to_ids = lambda token: {"<end>": 2}[token]
    tree = LabelTree.of(tokenizer, ["ab", "c"], "<end>", "cpu")
    assert tree.first.tolist() == [97, 99] and tree.inputs.tolist() == [97, 98, 99]
    assert tree.targets.tolist() == [98, 2, 2] and calls == [False, False]


class Bigram:
    """A model whose next-token logits depend on the token fed alone; checks what it is given."""

    dtype = torch.float32
    _torch = torch

    def __init__(self, vocabulary=12, seed=0):
        self.table = torch.from_numpy(np.random.default_rng(seed).normal(size=(vocabulary,
                                                                                vocabulary)))
        self.table = self.table.float()
        self.seen = []

    def extend(self, tokens, mask, positions, cache):
        self.seen.append((tokens, mask, positions, cache))
        return self.table[tokens]


def test_the_scores_are_each_label_scored_apart():
    model, tree = Bigram(), LabelTree(LABELS, "cpu")
    prompt_logits = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 12))).float()
    state = SimpleNamespace(logits=prompt_logits, attention_mask=torch.tensor([[1, 1, 1],
                                                                               [0, 1, 1]]),
                            next_position=torch.tensor([3, 2]), cache="the prompt's cache")
    scores = score_labels(model, state, tree)
    assert scores.dtype == torch.float64 and scores.shape == (2, 3)
    for clip in range(2):
        for k, ids in enumerate(LABELS):
            expected = torch.log_softmax(prompt_logits[clip], -1)[ids[0]].item()
            for fed, target in zip(ids, ids[1:]):
                expected += torch.log_softmax(model.table[fed], -1)[target].item()
            assert scores[clip, k].item() == pytest.approx(expected, abs=1e-5)
    tokens, mask, positions, cache = model.seen[0]
    assert tokens.tolist() == [[5, 6, 9]] * 2 and cache == "the prompt's cache"
    assert positions.tolist() == [[3, 4, 3], [2, 3, 2]]  # after each clip's own prompt
    lowest = torch.finfo(torch.float32).min
    assert mask.shape == (2, 1, 3, 6) and mask.dtype == torch.float32
    assert mask[1, 0, 0].tolist() == [lowest, 0, 0, 0, lowest, lowest]  # padding unseen
    assert mask[0, 0, 2].tolist() == [0, 0, 0, lowest, lowest, 0]


def test_labels_of_one_token_need_no_extra_forward():
    model = Bigram()
    state = SimpleNamespace(logits=torch.zeros(1, 12), attention_mask=torch.ones(1, 2),
                            next_position=torch.tensor([2]), cache=None)
    scores = score_labels(model, state, LabelTree([[3], [4]], "cpu"))
    assert model.seen == [] and scores[0].tolist() == pytest.approx([-np.log(12)] * 2)
