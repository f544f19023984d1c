import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="the hf extra is not installed")
pytest.importorskip("transformers", reason="the hf extra is not installed")


from harness.models._decode import beam_search, sample  # noqa: E402
from harness.models.api import Decoding  # noqa: E402
from tests.models.table_model import (  # noqa: E402
    ENDING,
    EOS,
    PAD,
    TABLE,
    Model,
    NullCache,
    V,
    start,
    step,
)


def sequence_logprob(first: int, tokens: tuple[int, ...]) -> float:
    logp = torch.log_softmax(TABLE.double(), -1)
    total, last = 0.0, first
    for t in tokens:
        total += float(logp[last, t])
        last = t
    return total


@pytest.mark.parametrize("width", [1, 3, 5])
def test_beam_scores_are_raw_sums_of_token_logprobs(width):
    out = beam_search(step, start(), width, Decoding(mode="beam", num_candidates=width,
                                                     max_new_tokens=6), [EOS], PAD)
    assert len(out) == 2
    for first, beams in zip((1, 2), out):
        assert len(beams) == width
        scores = [b.logprob for b in beams]
        assert scores == sorted(scores, reverse=True)
        for b in beams:
            assert b.logprob == pytest.approx(sequence_logprob(first, b.tokens), abs=1e-5)
            assert len(b.tokens) <= 6 and (EOS not in b.tokens[:-1])
        assert len({b.tokens for b in beams}) == width


def test_beam_width_one_is_greedy():
    greedy = sample(step, start(), 1, Decoding(max_new_tokens=6), [EOS], PAD)
    beam = beam_search(step, start(), 1, Decoding(mode="beam", max_new_tokens=6), [EOS], PAD)
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens
        assert g[0].logprob == pytest.approx(b[0].logprob)


def test_min_new_tokens_blocks_eos_and_max_pins_length():
    out = sample(step, start(), 1, Decoding(max_new_tokens=7, min_new_tokens=7), [EOS], PAD)
    assert all(len(seqs[0].tokens) == 7 and EOS not in seqs[0].tokens for seqs in out)


def test_non_finite_logits_mark_the_candidate_instead_of_crashing():
    out = sample(Model(nan_at=2), start(), 1, Decoding(max_new_tokens=5, min_new_tokens=5),
                 [EOS], PAD)
    assert out[0][0].finite is False and out[1][0].finite is True
    beams = beam_search(Model(nan_at=2), start(), 2, Decoding(mode="beam", num_candidates=2,
                                                     max_new_tokens=4, min_new_tokens=4),
                        [EOS], PAD)
    assert all(np.isfinite(b.logprob) for clip in beams for b in clip)
    assert not all(b.finite for b in beams[0])  # a beam of the NaN's clip says so
    assert all(b.finite for b in beams[1])  # closed at the last step, never touched by the NaN


def test_a_beam_keeps_the_mark_of_a_non_finite_step_to_its_end():
    """A beam whose logits were NaN at its second step still says so when it ends two steps
    later (the mark follows the beam through each reorder); the other clip's beam is clean."""
    out = beam_search(Model(nan_at=1), start(), 1, Decoding(mode="beam", max_new_tokens=4,
                                                   min_new_tokens=4), [EOS], PAD)
    assert [clip[0].finite for clip in out] == [False, True]
    assert all(len(clip[0].tokens) == 4 for clip in out)


def test_decoding_never_steps_past_its_last_token():
    """The model runs once per token after the prefill's first: ``max_new_tokens - 1`` steps, by
    sampling and by beam search (a step after the last token is a wasted forward pass)."""
    sampled, searched = Model(), Model()
    sample(sampled, start(), 2, Decoding(mode="sample", num_candidates=2, max_new_tokens=5,
                                         min_new_tokens=5), [EOS], PAD, torch.Generator())
    beam_search(searched, start(), 2, Decoding(mode="beam", num_candidates=2, max_new_tokens=5,
                                               min_new_tokens=5), [EOS], PAD)
    assert sampled.calls == searched.calls == 4


def test_log_probabilities_are_float32_whatever_the_models_dtype():
    """A bfloat16 model's logits are normalised in float32 (log-softmax in bfloat16 keeps about
    three digits, too few for candidates' α)."""
    from harness.models._decode import _log_probs

    logits = TABLE[:3].to(torch.bfloat16)
    logp, bad = _log_probs(logits, torch.tensor([EOS]), False)
    assert logp.dtype == torch.float32 and not bad.any()
    torch.testing.assert_close(logp, torch.log_softmax(logits.float(), -1))


def test_repeating_a_prefill_marks_the_prompt_shared_by_the_repeats():
    """n > 1 beams or samples of a clip share its prompt, so a beam reorder may rewrite only
    the generated suffix; one sequence a clip leaves the cache as it is."""
    from types import SimpleNamespace

    class Cache(NullCache):
        def __init__(self):
            self.layers = [SimpleNamespace(shared=0, length=7)]
            self.repeats = []

        def batch_repeat_interleave(self, n):
            self.repeats.append(n)

    once, thrice = Cache(), Cache()
    assert start(cache=once).repeat(1).logits.shape[0] == 2
    assert once.repeats == [] and once.layers[0].shared == 0
    state = start(cache=thrice).repeat(3)
    assert state.logits.shape[0] == state.attention_mask.shape[0] == 6
    assert thrice.repeats == [3] and thrice.layers[0].shared == 7


def test_a_sample_scores_the_tokens_it_kept_not_the_steps_after_its_end():
    """Samples end at different steps (EOS after 1 to 8 tokens): each one's α is the raw sum
    of its own tokens' log-probabilities, nothing added once it ended."""
    decoding = Decoding(mode="sample", num_candidates=6, max_new_tokens=8, temperature=2.0)
    out = sample(step, start(), 6, decoding, [EOS], PAD, torch.Generator().manual_seed(3))
    lengths = {len(s.tokens) for clip in out for s in clip}
    assert min(lengths) < 8 and max(lengths) == 8  # some ended early, the loop ran on
    for first, clip in zip((1, 2), out):
        for s in clip:
            assert s.logprob == pytest.approx(sequence_logprob(first, s.tokens), abs=1e-6)


def test_samples_follow_the_seed():
    decoding = Decoding(mode="sample", num_candidates=4, max_new_tokens=5, temperature=1.5)
    a = sample(step, start(), 4, decoding, [EOS], PAD, torch.Generator().manual_seed(1))
    b = sample(step, start(), 4, decoding, [EOS], PAD, torch.Generator().manual_seed(1))
    assert [s.tokens for s in a[0]] == [s.tokens for s in b[0]]
    assert len(a[0]) == 4 and len({s.tokens for s in a[0]}) > 1


@pytest.mark.parametrize(("temperature", "top_p"), [(2.0, 1.0), (0.5, 1.0), (1.0, 0.8)])
def test_samples_are_drawn_from_the_tempered_nucleus_of_the_next_token_distribution(temperature,
                                                                                       top_p):
    """4,000 one-token samples: each token's share is its probability under softmax(logits / T),
    cut to the smallest set of most likely tokens holding ``top_p`` of it and renormalised."""
    n = 4000
    decoding = Decoding(mode="sample", num_candidates=n, max_new_tokens=1, temperature=temperature,
                        top_p=top_p)
    [clip] = sample(step, start(clips=1), n, decoding, [EOS], PAD, torch.Generator().manual_seed(0))
    drawn = np.bincount([s.tokens[0] if s.tokens else EOS for s in clip], minlength=V) / n
    p = torch.softmax(TABLE[1].double() / temperature, -1).numpy()
    order = np.argsort(-p)
    kept = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
    expected = np.zeros(V)
    expected[kept] = p[kept] / p[kept].sum()
    np.testing.assert_allclose(drawn, expected, atol=0.03)
    assert (drawn[expected == 0] == 0).all()


def _advance_by_loop(beams, top_scores, top_index, vocab, eos, pad_id, bad, last):
    """The bookkeeping as first written, clip by clip and candidate by candidate: the oracle the
    vectorised one must equal."""
    from harness.models._decode import Decoded, _close_clip

    width = beams.width
    source = np.zeros(beams.clips * width, dtype=np.int64)
    tokens = np.full(beams.clips * width, pad_id, dtype=np.int64)
    new_scores = np.full(beams.clips * width, -np.inf)
    for c in range(beams.clips):
        rows = range(c * width, (c + 1) * width)
        source[rows] = np.arange(c * width, (c + 1) * width)
        if beams.done[c]:
            continue
        kept = 0
        for rank, (score, flat) in enumerate(zip(top_scores[c], top_index[c])):
            src, token = c * width + int(flat) // vocab, int(flat) % vocab
            if not np.isfinite(score):
                break
            if token in eos:
                if rank < width:
                    beams.finished[c].append(Decoded(
                        (*beams.history[src].tolist(), token), float(score), not bad[src]))
                continue
            row = c * width + kept
            source[row], tokens[row], new_scores[row] = src, token, score
            kept += 1
            if kept == width:
                break
        _close_clip(beams, c, source, tokens, new_scores, bad, last)
    beams.history = np.concatenate([beams.history[source], tokens[:, None]], axis=1)
    return source, tokens, new_scores


@st.composite
def beam_steps(draw):
    clips, width, vocab = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(2, 6))
    k = min(2 * width, width * vocab)
    finite = draw(st.lists(st.integers(0, k), min_size=clips, max_size=clips))
    scores = np.full((clips, k), -np.inf)
    index = np.zeros((clips, k), dtype=np.int64)
    for c in range(clips):
        values = draw(st.lists(st.floats(-30, 0), min_size=finite[c], max_size=finite[c]))
        scores[c, : finite[c]] = sorted(values, reverse=True)
        index[c] = draw(st.permutations(range(width * vocab)))[:k]
    done = draw(st.lists(st.booleans(), min_size=clips, max_size=clips))
    earlier = [draw(st.lists(st.floats(-30, 0), max_size=2 * width)) for _ in range(clips)]
    bad = np.array(draw(st.lists(st.booleans(), min_size=clips * width, max_size=clips * width)))
    return clips, width, vocab, scores, index, done, earlier, bad, draw(st.booleans())


@given(beam_steps())
@settings(max_examples=300, deadline=None)
def test_vectorised_beam_bookkeeping_equals_the_clip_by_clip_loop(case):
    from harness.models._decode import Decoded, _advance, _Beams

    clips, width, vocab, scores, index, done, earlier, bad, last = case
    history = np.arange(clips * width * 2).reshape(clips * width, 2)

    def fresh():
        return _Beams(clips, width, history.copy(),
                      [[Decoded((9,), s, True) for s in e] for e in earlier], list(done))

    ours, reference = fresh(), fresh()
    got = _advance(ours, scores, index, vocab, {0}, 7, bad, last)
    want = _advance_by_loop(reference, scores, index, vocab, {0}, 7, bad, last)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert ours.finished == reference.finished and ours.done == reference.done
    np.testing.assert_array_equal(ours.history, reference.history)


@pytest.mark.parametrize(("clips", "width", "vocab"), [(3, 5, 50), (2, 3, 4), (1, 1, 7)])
def test_best_continuations_equal_the_topk_over_every_beam_and_token(clips, width, vocab):
    from harness.models._decode import _best_continuations

    generator = torch.Generator().manual_seed(clips * width * vocab)
    logp = torch.log_softmax(torch.randn(clips * width, vocab, generator=generator), -1)
    scores = torch.randn(clips, width, generator=generator, dtype=torch.float64) * 3
    scores[:, 1:][torch.rand(clips, width - 1, generator=generator) < 0.3] = -torch.inf
    k = min(2 * width, width * vocab)
    full = (scores.reshape(-1, 1) + logp.double()).view(clips, width * vocab).topk(k, dim=1)
    got = _best_continuations(logp, scores, k)
    finite = torch.isfinite(full.values)  # among -inf totals the order is arbitrary
    assert torch.equal(got[0], full.values)
    assert torch.equal(got[1][finite], full.indices[finite])


def test_decoding_stops_soon_after_every_sequence_has_ended():
    """A model that ends every answer at once is not stepped on to ``max_new_tokens``: sampling
    checks every 4 steps whether all have ended, beam search once each clip has its beams."""
    ending = Model(ENDING)
    out = sample(ending, start(table=ENDING), 1, Decoding(max_new_tokens=96), [EOS], PAD)
    assert [clip[0].tokens for clip in out] == [(EOS,), (EOS,)]
    assert ending.calls == 3  # steps 1-3 ran; at step 4 all had ended
    ending = Model(ENDING)
    beams = beam_search(ending, start(table=ENDING), 3,
                        Decoding(mode="beam", num_candidates=3, max_new_tokens=96), [EOS], PAD)
    assert all(len(clip) == 3 for clip in beams)
    assert ending.calls == 1  # one step: each beam ended with it, and each clip had its three


def test_beam_search_keeps_its_width_when_end_tokens_crowd_the_best_continuations():
    """With three end tokens, the four best continuations of the first step are a going one
    and three ends; the second going beam ranks fifth. Transformers keeps (1 + ends) x width
    candidates so that ``width`` beams go on; kept to 2 x width, the beam that ends best was
    lost. Step 0: 1 (.30), ends 5/6/7 (.20/.19/.18), 2 (.10); after 2 an end is likely (.93),
    after 1 nothing is (at most .15): the best two are (5,) and (2, 5)."""
    ends, v = [5, 6, 7], 8
    probs = torch.full((2, v, v), 1.0 / v)
    probs[0, 3] = torch.tensor([0.01, 0.30, 0.10, 0.01, 0.01, 0.20, 0.19, 0.18])
    probs[1, 1] = torch.tensor([0.15, 0.13, 0.12, 0.14, 0.14, 0.11, 0.11, 0.10])
    probs[1, 2] = torch.tensor([0.01] * 5 + [0.93, 0.01, 0.01])
    tables = probs.log()
    out = beam_search(lambda tokens, mask, positions, cache: tables[int(positions[0]) - 2][tokens],
                      start(clips=1, first=(3,), table=tables[0]), 2,
                      Decoding(mode="beam", num_candidates=2, max_new_tokens=2), ends, PAD)
    assert [d.tokens for d in out[0]] == [(5,), (2, 5)]
    assert [d.logprob for d in out[0]] == pytest.approx([np.log(0.2), np.log(0.1 * 0.93)])


@pytest.mark.parametrize("width", [1, 3])
def test_an_answer_may_end_right_after_its_min_new_tokens(width):
    """EOS is blocked for the first ``min_new_tokens`` steps only: a model that would end at once
    ends with the next token, by sampling and by beam search alike."""
    mode = {"mode": "beam", "num_candidates": width} if width > 1 else {}
    decoding = Decoding(max_new_tokens=9, min_new_tokens=2, **mode)
    search = beam_search if width > 1 else sample
    out = search(lambda tokens, *_: ENDING[tokens], start(table=ENDING), width, decoding, [EOS],
                 PAD)
    for clip in out:
        assert [len(d.tokens) for d in clip] == [3] * width
        assert all(d.tokens[-1] == EOS and EOS not in d.tokens[:-1] for d in clip)


@pytest.mark.parametrize(("top_p", "kept"), [(0.5, 1), (0.500001, 2), (1e-9, 1), (0.75, 2)])
def test_the_nucleus_is_the_smallest_set_whose_mass_reaches_top_p(top_p, kept):
    """Two tokens of 1/2 each: top_p = 1/2 is reached by the first alone, as transformers'
    top-p keeps it; a tiny top_p still keeps the most likely token."""
    even = torch.full((1, V), -torch.inf)
    even[0, 1:3] = 0.0
    decoding = Decoding(mode="sample", num_candidates=200, max_new_tokens=1, top_p=top_p)
    [clip] = sample(step, start(clips=1, first=(0,), table=even), 200, decoding, [EOS], PAD,
                    torch.Generator().manual_seed(0))
    assert len({s.tokens for s in clip}) == kept
    assert {s.tokens[0] for s in clip} <= {1, 2}
