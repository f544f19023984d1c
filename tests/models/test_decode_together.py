"""``decode_searches`` with several searches: the decodings of one prefill in one loop."""

import pytest

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")

from harness.models._decode import beam_search, decode_searches, new_search, sample  # noqa: E402
from harness.models.api import Decoding  # noqa: E402
from tests.models.table_model import EOS, PAD, TABLE, Model, V, start, step  # noqa: E402


class Recording(Model):
    """:class:`Model` that keeps the tokens of each step; its cache keeps each reorder."""

    def __init__(self, table=TABLE):
        super().__init__(table)
        self.tokens, self.reorders = [], []

    def __call__(self, tokens, mask, positions, cache):
        self.tokens.append(tokens.tolist())
        return super().__call__(tokens, mask, positions, cache)

    def reorder_cache(self, index):
        self.reorders.append(index.tolist())

    def batch_repeat_interleave(self, n):
        pass


TOGETHER = [Decoding(max_new_tokens=3),
            Decoding(mode="beam", num_candidates=3, max_new_tokens=6),
            Decoding(mode="sample", num_candidates=2, max_new_tokens=5, min_new_tokens=5,
                     temperature=1.0, seed=3)]


def _searches(decodings, clips=2):
    return [new_search(d, clips, V, [EOS], PAD, "cpu",
                       torch.Generator().manual_seed(d.seed) if d.mode == "sample" else None)
            for d in decodings]


def test_searches_decoded_together_answer_as_each_alone():
    """Greedy, beam search and sampling in one loop: each one's candidates (samples from the
    same seed) equal those it gives alone, in as many steps as the longest of them alone."""
    model = Recording()
    together = decode_searches(model, start(cache=model), _searches(TOGETHER))
    alone = []
    for search in _searches(TOGETHER):
        counted = Model()
        alone.append((decode_searches(counted, start(), [search])[0], counted.calls))
    assert together == [answers for answers, _ in alone]
    assert model.calls == max(calls for _, calls in alone) == 4  # the samples: five tokens
    assert [len(answers[0]) for answers in together] == [1, 3, 2]


def test_decoding_together_lays_each_clips_sequences_side_by_side_and_reorders_only_beams():
    """A clip's six sequences (greedy, three beams, two samples) sit next to each other; a beam
    reorder moves beams within their clip's block only, and a decoding that has ended gives
    padding (greedy's third token is the last it feeds the model)."""
    model = Recording()
    decode_searches(model, start(cache=model), _searches(TOGETHER))
    group = 6
    for index in model.reorders:
        for row, source in enumerate(index):
            clip, offset = divmod(row, group)
            if offset in (1, 2, 3):  # the beams: from a beam of the same clip
                assert source // group == clip and source % group in (1, 2, 3)
            else:
                assert source == row
    assert len(model.tokens) == 4
    assert model.tokens[3][0] == model.tokens[3][group] == PAD
    samples = Recording()  # the samples go on, as they do alone
    decode_searches(samples, start(cache=samples), _searches(TOGETHER[2:]))
    assert [[step[4], step[5], step[10], step[11]] for step in model.tokens] == samples.tokens


def test_one_search_alone_is_the_decoding_itself():
    for decoding in TOGETHER:
        search = _searches([decoding])[0]
        ran = decode_searches(step, start(), [search])[0]
        if decoding.mode == "beam":
            expected = beam_search(step, start(), 3, decoding, [EOS], PAD)
        else:
            expected = sample(step, start(), decoding.num_candidates, decoding, [EOS], PAD,
                              _searches([decoding])[0].generator)
        assert ran == expected


def test_a_non_finite_row_marks_only_its_own_decodings_candidate_when_together():
    """Row 0 (clip 0's greedy sequence) turns NaN at the second step: that candidate says so,
    and every other decoding's candidates equal what it gives alone."""
    together = decode_searches(Model(nan_at=2), start(), _searches(TOGETHER))
    assert together[0][0][0].finite is False and together[0][1][0].finite is True
    for k, search in enumerate(_searches(TOGETHER)[1:], start=1):
        assert together[k] == decode_searches(Model(), start(), [search])[0]
