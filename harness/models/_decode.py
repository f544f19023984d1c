"""Decoding loops over an already prefilled KV cache: greedy, sampling and beam search.

The prompt (audio included) is prefilled once per clip; beams and samples then share it by
repeating the cache, instead of repeating the audio features and the prefill once per beam as
Hugging Face's ``generate`` does. Scores are raw cumulative log-likelihoods (length penalty 0).
Non-finite logits never crash a batch: the sequence is marked ``finite=False`` and carries on.

Each decoding is a search that chooses its sequences' next tokens a step at a time
(:func:`new_search`); :func:`decode_searches` steps the model for one or several of them in one
loop (``sample`` and ``beam_search`` are the loop of one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness.models._kv_cache import mark_shared_prefix

# step(token ids (S,), attention mask (S, L), positions (S,), cache) -> logits (S, V)
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass
class Prefilled:
    """The state after the prompt: last-position logits, the cache, mask and next positions."""

    logits: torch.Tensor
    cache: Any
    attention_mask: torch.Tensor
    next_position: torch.Tensor

    def repeat(self, n: int) -> Prefilled:
        """Each clip's state ``n`` times (beams or samples of one clip sit next to each other)."""
        if n > 1:
            self.cache.batch_repeat_interleave(n)
            mark_shared_prefix(self.cache)  # the prompt is the same for all n
        return Prefilled(self.logits.repeat_interleave(n, 0), self.cache,
                         self.attention_mask.repeat_interleave(n, 0),
                         self.next_position.repeat_interleave(n, 0))


@dataclass(frozen=True)
class Decoded:
    """One finished sequence: generated token ids (EOS included), α, and whether all was finite."""

    tokens: tuple[int, ...]
    logprob: float
    finite: bool


def _log_probs(logits: torch.Tensor, eos: torch.Tensor, block_eos: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """log-softmax in float32 with non-finite logits neutralised (and flagged per row)."""
    logits = logits.float()
    finite = torch.isfinite(logits)
    bad = ~finite.all(dim=-1)
    logp = torch.log_softmax(logits.masked_fill(~finite, -1e30), dim=-1)
    if block_eos:
        logp[:, eos] = -torch.inf
    return logp, bad


def _choose(logp: torch.Tensor, mode: str, temperature: float, top_p: float,
            generator: torch.Generator | None) -> torch.Tensor:
    if mode == "greedy":
        return logp.argmax(dim=-1)
    probs = torch.softmax(logp / max(temperature, 1e-5), dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # the smallest set of most likely tokens whose mass reaches top_p (transformers' rule):
        # a token goes once the tokens before it hold top_p (> 0: the most likely stays)
        drop = sorted_p.cumsum(dim=-1) - sorted_p >= top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


class _Constraint:
    """Per-sequence automaton states and the device table of allowed tokens per state."""

    def __init__(self, automaton, sequences: int, device) -> None:
        self.automaton = automaton
        self.table = torch.from_numpy(automaton.masks).to(device)
        self.states = automaton.initial(sequences)

    def apply(self, logp: torch.Tensor) -> torch.Tensor:
        allowed = self.table[torch.from_numpy(self.states).to(logp.device)]
        return logp.masked_fill(~allowed, -torch.inf)

    def advance(self, tokens: np.ndarray, source: np.ndarray | None = None) -> None:
        states = self.states if source is None else self.states[source]
        self.states = self.automaton.advance(states, tokens)


class _Sampling:
    """Greedy decoding (``n == 1``) or ``n`` independent samples per clip, a step at a time:
    ``choose`` takes the logits of this decoding's sequences and returns their next tokens."""

    def __init__(self, clips: int, n: int, decoding, eos_ids: list[int], pad_id: int, device,
                 generator: torch.Generator | None = None, constraint=None) -> None:
        s = clips * n
        self.clips, self.n, self.decoding, self.pad_id = clips, n, decoding, pad_id
        self.eos_ids, self.generator = eos_ids, generator
        self.eos = torch.tensor(eos_ids, device=device)
        self.finished = torch.zeros(s, dtype=torch.bool, device=device)
        self.bad = torch.zeros_like(self.finished)
        self.total = torch.zeros(s, dtype=torch.float64, device=device)
        self.guide = _Constraint(constraint, s, device) if constraint is not None else None
        self.steps: list[torch.Tensor] = []
        self.stopped = False

    def choose(self, logits: torch.Tensor, t: int) -> tuple[torch.Tensor, None]:
        d = self.decoding
        logp, nonfinite = _log_probs(logits, self.eos, t < d.min_new_tokens)
        if self.guide is not None:
            logp = self.guide.apply(logp)
        token = _choose(logp, d.mode, d.temperature, d.top_p, self.generator)
        chosen = logp.gather(1, token[:, None])[:, 0].double()
        self.total += torch.where(self.finished, 0.0, chosen)
        self.bad |= nonfinite & ~self.finished
        token = torch.where(self.finished, self.pad_id, token)
        if self.guide is not None:
            self.guide.advance(token.cpu().numpy())
        self.steps.append(token)
        self.finished |= torch.isin(token, self.eos)
        self.stopped = t == d.max_new_tokens - 1 or (t % 4 == 3 and bool(self.finished.all()))
        return token, None

    def results(self) -> list[list[Decoded]]:
        tokens = torch.stack(self.steps, dim=1).cpu().numpy()
        out = [_cut(tokens[i], set(self.eos_ids), float(self.total[i]), not bool(self.bad[i]))
               for i in range(tokens.shape[0])]
        return [out[c * self.n:(c + 1) * self.n] for c in range(self.clips)]


def sample(step: StepFn, state: Prefilled, n: int, decoding, eos_ids: list[int], pad_id: int,
           generator: torch.Generator | None = None, constraint=None) -> list[list[Decoded]]:
    """Greedy decoding (``n == 1``) or ``n`` independent samples per clip.

    ``constraint`` (a :class:`~harness.models._constrained.JsonConstraint`) masks every step to
    the tokens that keep each sequence a prefix of the answer template.
    """
    search = _Sampling(state.logits.shape[0], n, decoding, eos_ids, pad_id, state.logits.device,
                       generator, constraint)
    return decode_searches(step, state, [search])[0]


def _cut(row: np.ndarray, eos: set[int], logprob: float, finite: bool) -> Decoded:
    ends = [i for i, tok in enumerate(row.tolist()) if tok in eos]
    keep = row[: ends[0] + 1] if ends else row
    return Decoded(tuple(int(t) for t in keep), logprob, finite)


@dataclass
class _Beams:
    """Host-side bookkeeping of one beam search: histories, scores and finished hypotheses."""

    clips: int
    width: int
    history: np.ndarray
    finished: list[list[Decoded]]
    done: list[bool]


class _BeamSearch:
    """Beam search of ``width`` beams per clip, a step at a time: ``choose`` also returns, for
    each of its sequences, the one (of its own) that it continues."""

    def __init__(self, clips: int, width: int, vocab: int, decoding, eos_ids: list[int],
                 pad_id: int, device, constraint=None) -> None:
        self.clips, self.n, self.vocab, self.decoding, self.pad_id = clips, width, vocab, decoding, pad_id
        self.eos_ids, self.device = eos_ids, device
        self.eos = torch.tensor(eos_ids, device=device)
        self.scores = torch.full((clips, width), -torch.inf, device=device, dtype=torch.float64)
        self.scores[:, 0] = 0.0
        self.beams = _Beams(clips, width, np.zeros((clips * width, 0), dtype=np.int64),
                            [[] for _ in range(clips)], [False] * clips)
        self.bad = np.zeros(clips * width, dtype=bool)
        self.guide = _Constraint(constraint, clips * width, device) if constraint is not None else None
        # as transformers: enough candidates that each clip keeps ``width`` going beams even
        # when every beam's ends rank first (each beam offers at most one candidate per end token)
        self.keep = max(2, 1 + len(eos_ids)) * width
        self.stopped = False

    def choose(self, logits: torch.Tensor, t: int) -> tuple[torch.Tensor, np.ndarray]:
        d = self.decoding
        logp, flagged = _log_probs(logits, self.eos, t < d.min_new_tokens)
        if self.guide is not None:
            logp = self.guide.apply(logp)
        top_scores, top_index = _best_continuations(logp, self.scores, self.keep)
        last = t == d.max_new_tokens - 1
        nonfinite = flagged.cpu().numpy()
        source, tokens, new_scores = _advance(
            self.beams, top_scores.cpu().numpy(), top_index.cpu().numpy(), self.vocab,
            set(self.eos_ids), self.pad_id, self.bad | nonfinite, last)
        self.bad = (self.bad | nonfinite)[source]
        if self.guide is not None:
            self.guide.advance(tokens, source)
        self.stopped = last or all(self.beams.done)
        if not self.stopped:
            self.scores = torch.from_numpy(new_scores).to(self.device).view(self.clips, self.n)
        return torch.from_numpy(tokens).to(self.device), source

    def results(self) -> list[list[Decoded]]:
        return [sorted(f, key=lambda d: -d.logprob)[:self.n] for f in self.beams.finished]


def beam_search(step: StepFn, state: Prefilled, width: int, decoding, eos_ids: list[int],
                pad_id: int, constraint=None) -> list[list[Decoded]]:
    """Beam search returning ``width`` beams per clip, ranked by raw cumulative log-likelihood."""
    clips, vocab = state.logits.shape
    search = _BeamSearch(clips, width, vocab, decoding, eos_ids, pad_id, state.logits.device,
                         constraint)
    return decode_searches(step, state, [search])[0]


def new_search(decoding, clips: int, vocab: int, eos_ids: list[int], pad_id: int, device,
               generator: torch.Generator | None = None, constraint=None):
    """The search ``decoding`` asks for over ``clips`` prefilled clips (for
    :func:`decode_searches`)."""
    if decoding.mode == "beam":
        return _BeamSearch(clips, decoding.num_candidates, vocab, decoding, eos_ids, pad_id,
                           device, constraint)
    return _Sampling(clips, decoding.num_candidates, decoding, eos_ids, pad_id, device,
                     generator, constraint)


def decode_searches(step: StepFn, state: Prefilled, searches: list) -> list[list[list[Decoded]]]:
    """Run ``searches`` (of :func:`new_search`) from one prefilled batch in one loop: each step
    runs every clip's sequences of all of them through the model together (a clip's sequences
    side by side, each search's in a block of its own), and each search chooses its own
    sequences' next tokens from their logits as if it ran alone. A search that has ended gives
    padding until the others end. One list per search, of its candidates per clip.
    """
    clips = state.logits.shape[0]
    sizes = [s.n for s in searches]
    state = state.repeat(sum(sizes))
    device = state.logits.device
    rows = None
    if len(searches) > 1:  # each search's rows, on the host and (indexed each step) the device
        rows = [(own, torch.from_numpy(own).to(device)) for own in _rows_of(clips, sizes)]
    logits, mask, position = state.logits, state.attention_mask, state.next_position
    for t in range(max(s.decoding.max_new_tokens for s in searches)):
        tokens, source = _choose_all(searches, rows, logits, t)
        if all(s.stopped for s in searches):
            break
        if source is not None:
            index = torch.from_numpy(source).to(device)
            state.cache.reorder_cache(index)
            mask = mask[index]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        logits = step(tokens, mask, position, state.cache)
        position = position + 1
    return [s.results() for s in searches]


def _rows_of(clips: int, sizes: list[int]) -> list[np.ndarray]:
    """Each search's rows of the repeated batch, clip by clip (its own order when alone)."""
    group, starts = sum(sizes), np.cumsum([0, *sizes[:-1]])
    return [(np.arange(clips)[:, None] * group + start + np.arange(n)[None, :]).reshape(-1)
            for start, n in zip(starts, sizes)]


def _choose_all(searches: list, rows: list | None, logits: torch.Tensor, t: int):
    """Every running search's next tokens, as one row of tokens, and where each row continues
    from (None: where it was); a search that has ended gives padding. ``rows``: each search's
    rows as host and device indexes (None: one search, all of them)."""
    if rows is None:
        return searches[0].choose(logits, t)
    tokens = torch.full((logits.shape[0],), searches[0].pad_id, dtype=torch.long,
                        device=logits.device)
    source = None
    for search, (own, index) in zip(searches, rows):
        if search.stopped:
            continue
        token, moved = search.choose(logits.index_select(0, index), t)
        tokens.index_copy_(0, index, token)
        if moved is not None and not search.stopped:
            source = np.arange(logits.shape[0]) if source is None else source
            source[own] = own[moved]
    return tokens, source


def _best_continuations(logp: torch.Tensor, scores: torch.Tensor, k: int):
    """Each clip's ``k`` best (beam, token) continuations by total log-likelihood, as (clips, k)
    totals and flat indices ``beam * vocab + token``, descending.

    A clip's ``k`` best are among each beam's own ``k`` best tokens, so the float64 totals are
    formed over those only, not over every beam times the vocabulary.
    """
    clips, width = scores.shape
    vocab = logp.shape[1]
    per_beam = min(k, vocab)
    beam_lp, beam_token = logp.topk(per_beam, dim=1)  # (clips * width, per_beam)
    totals = (scores.reshape(-1, 1) + beam_lp.double()).view(clips, width * per_beam)
    top_scores, pick = totals.topk(k, dim=1)
    token = beam_token.view(clips, width * per_beam).gather(1, pick)
    return top_scores, pick.div(per_beam, rounding_mode="floor") * vocab + token


def _advance(beams: _Beams, top_scores: np.ndarray, top_index: np.ndarray, vocab: int,
             eos: set[int], pad_id: int, bad: np.ndarray, last: bool):
    """One step of beam bookkeeping on the host, vectorised over clips (the GPU waits for it):
    EOS among a clip's ``width`` best candidates finishes a hypothesis, the best non-EOS
    candidates become the next beams."""
    clips, width = beams.clips, beams.width
    ranks = np.arange(top_scores.shape[1])[None, :]
    first_row = np.arange(clips)[:, None] * width
    source_of, token_of = first_row + top_index // vocab, top_index % vocab
    live = (~np.asarray(beams.done, dtype=bool))[:, None] & np.logical_and.accumulate(
        np.isfinite(top_scores), axis=1)  # a clip's candidates up to its first -inf
    at_eos = np.isin(token_of, list(eos))
    going = live & ~at_eos
    slot = np.cumsum(going, axis=1) - 1
    taken = going & (slot < width)
    source = np.arange(clips * width)
    tokens = np.full(clips * width, pad_id, dtype=np.int64)
    new_scores = np.full(clips * width, -np.inf)
    rows = (first_row + slot)[taken]
    source[rows], tokens[rows], new_scores[rows] = (source_of[taken], token_of[taken],
                                                     top_scores[taken])
    for c, r in zip(*np.nonzero(live & at_eos & (ranks < width))):
        src = source_of[c, r]
        beams.finished[c].append(Decoded((*beams.history[src].tolist(), int(token_of[c, r])),
                                         float(top_scores[c, r]), not bad[src]))
    for c in range(clips):
        if not beams.done[c] and (last or len(beams.finished[c]) >= width):
            _close_clip(beams, c, source, tokens, new_scores, bad, last)
    beams.history = np.concatenate([beams.history[source], tokens[:, None]], axis=1)
    return source, tokens, new_scores


def _close_clip(beams: _Beams, c: int, source, tokens, new_scores, bad, last: bool) -> None:
    """A clip is done when its best running beam can no longer beat its worst kept hypothesis."""
    width = beams.width
    rows = range(c * width, (c + 1) * width)
    running = [(new_scores[r], r) for r in rows if np.isfinite(new_scores[r])]
    if last:
        for score, r in running:
            beams.finished[c].append(Decoded(
                (*beams.history[source[r]].tolist(), int(tokens[r])), float(score),
                not bad[source[r]]))
        beams.done[c] = True
        return
    kept = sorted((d.logprob for d in beams.finished[c]), reverse=True)[:width]
    if len(kept) >= width and (not running or max(s for s, _ in running) <= kept[-1]):
        beams.done[c] = True
