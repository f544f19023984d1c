"""What a cell keeps of each item once the item's evidence is written, and the stream that does
the writing: a chunk's results come in, their evidence goes to a spool file, their candidates go.

So a cell of 100,000 items holds 100,000 small :class:`Outcome` rows, never their candidates'
texts or the verifier's replies; the spool becomes ``<cell>.items.jsonl`` when the record is
written.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.record import UNIFORM_GUESS, ItemEvidence, ItemRecord
from harness.record.json_line import json_line
from harness.strategies import ItemResult

COMMON_SCORES = 5  # the verifier's most frequent scores a record keeps

if TYPE_CHECKING:
    from harness.data import Dataset


@dataclass(frozen=True, slots=True)  # a cell holds one per item: no __dict__ each
class Outcome:
    """One item's result without its candidates: its row of the record (the per-item scores
    are added once the whole cell is known) and what the cell's summary reads of the candidates
    (computed before they are dropped).

    Attributes:
        row: The item's :class:`~harness.record.ItemRecord`, without its scores; its
            ``probs`` (:attr:`probs`) is the prediction, kept once.
        verifier_unscored: Candidates the verifier gave no score.
        verifier_scores: The scores the verifier gave the item's valid candidates (beam order;
            those it gave none left out), or None where no verifier scored them.
        alpha_preds: For a W-BoN item with a usable beam, its mixture under each choice of α
            (``ALPHAS`` order, τ = 1), else None (also where some choice weighs no beam: every
            α -inf).
        alpha_weight_max: Each of those mixtures' largest weight (None where not known: a
            strategy of one's own that gave its mixtures alone).
        tie_preds: For a valid ALM-v item, its prediction under each tie rule
            (``VERIFIER_TIES`` order), else None.
        has_usage, cost: Whether the item reported usage, and its estimated cost in USD (None
            when unknown).
    """

    row: ItemRecord
    verifier_unscored: int = 0
    verifier_scores: tuple[float, ...] | None = None
    alpha_preds: np.ndarray | None = None
    alpha_weight_max: np.ndarray | None = None
    tie_preds: np.ndarray | None = None
    has_usage: bool = False
    cost: float | None = None

    @property
    def probs(self) -> tuple[float, ...] | None:
        """The prediction (the row's), or None when the item is invalid."""
        return self.row.probs

    @property
    def valid(self) -> bool:
        return self.probs is not None


def outcome(result: ItemResult | Outcome) -> Outcome:
    """The outcome of one result (an outcome is returned as it is)."""
    if isinstance(result, Outcome):
        return result
    answer = (result.candidates[0]["text"][:2000]  # what an answer without a distribution said
              if (result.probs is None or result.rule == UNIFORM_GUESS) and result.candidates
              else None)
    probs = None if result.probs is None else tuple(np.asarray(result.probs).tolist())
    row = ItemRecord(result.item_id, probs, result.rule, result.reason, result.error,
                     result.tokens, tuple(result.notes), answer, None, *_weight_stats(result))
    return Outcome(row, sum(c.get("verifier_score", 0.0) is None for c in result.candidates),
                   _verifier_scores(result), *_alpha_preds(result), result.tie_picks,
                   bool(result.usage), result.usage.get("cost_usd"))


def answered(outcomes: Sequence[Outcome]) -> np.ndarray:
    """Per item, whether its answer gave a distribution of its own (not filled in)."""
    return np.array([o.valid and o.row.rule != UNIFORM_GUESS for o in outcomes], dtype=bool)


def unanswered(outcomes: Sequence[Outcome]) -> np.ndarray:
    """Per item, whether it is an answer that gave no distribution (left out or filled in), as
    opposed to a valid item or one whose generation failed."""
    return ~answered(outcomes) & np.array([o.row.error is None for o in outcomes], dtype=bool)


def _verifier_scores(result: ItemResult) -> tuple[float, ...] | None:
    """The verifier's scores of the item's valid candidates (empty where it gave none a score),
    or None where it was not asked (no verifier, or an item that failed before it)."""
    if not any("verifier_score" in c for c in result.candidates):
        return None
    return tuple(float(c["verifier_score"]) for c in result.candidates
                 if c["valid"] and c.get("verifier_score") is not None)


def verifier_use(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """How the verifier's scores told a cell's candidates apart (empty where no verifier was
    asked): ``scored``, the valid candidates it scored; ``items``, the items with two or more of
    them; of those, ``top_shared``, the items whose highest score two or more shared (``alm-v``'s
    pick fell to beam order: the likeliest beam, as ``bon`` picks), and ``all_equal``, those it
    scored all alike (``w-alm-v`` weighed them alike); ``common``, its most frequent scores, most frequent
    first, as ``[score, candidates]`` (at most :data:`COMMON_SCORES`); where the items weighed
    their candidates (``w-alm-v``, ``alm-v`` under ``verifier_ties="mean"``), ``weight_max``,
    their largest weight's mean (1 where one candidate took all; 1/B where B weighed alike).
    An ``alm-v`` cell's summary adds ``ties``, its numbers under each tie rule
    (:func:`~harness.runner.sensitivity.ties_sensitivity`)."""
    given = [o.verifier_scores for o in outcomes if o.verifier_scores is not None]
    if not given:
        return {}
    compared = [scores for scores in given if len(scores) >= 2]
    counts = Counter(score for scores in given for score in scores)
    use: dict[str, Any] = {
        "scored": sum(counts.values()), "items": len(compared),
        "top_shared": sum(scores.count(max(scores)) > 1 for scores in compared),
        "all_equal": sum(len(set(scores)) == 1 for scores in compared),
        "common": [[score, n] for score, n in counts.most_common(COMMON_SCORES)]}
    weighed = [w for o in outcomes if (w := o.row.weight_max) is not None]
    if weighed:
        use["weight_max"] = float(np.mean(weighed))
    return use


def _weight_stats(result: ItemResult) -> tuple[float | None, float | None]:
    """A mixture's largest weight and its weights' entropy in bits (None where no weights)."""
    weights = np.array([c["weight"] for c in result.candidates if "weight" in c])
    if weights.size == 0:
        return None, None
    positive = weights[weights > 0]
    return float(weights.max()), float(-(positive * np.log2(positive)).sum()) + 0.0


def _alpha_preds(result: ItemResult, tau: float = 1.0
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """W-BoN's mixture under each choice of α from the item's usable beams (no generation), and
    each one's largest weight: those the strategy computed with its prediction, else (a strategy
    of one's own that weighs beams by α) computed here; None where some choice weighs no beam."""
    from harness.aggregate import weighted_mixtures
    from harness.strategies import ALPHAS, alpha_of

    if result.alpha_mixtures is not None:
        return result.alpha_mixtures, result.alpha_weight_max
    if not any(c.get("alpha") is not None for c in result.candidates):
        return None, None
    usable = [c for c in result.candidates if c["valid"] and c.get("has_logprob")]
    if not usable:
        return None, None
    dists = np.array([c["probs"] for c in usable])
    try:
        mixtures, weights = weighted_mixtures(
            dists, [[alpha_of(c, a) for c in usable] for a in ALPHAS], tau)
    except (ValueError, ArithmeticError):  # every beam's α is -inf under some choice: the item
        return None, None  # is left out of the comparison, which keeps the same items for every choice
    return mixtures, weights.max(axis=1)


class CellItems:
    """A cell's items as they stream in: :meth:`add` a chunk of results (item order), read
    :attr:`outcomes` and :meth:`evidence` at the end. Close it (or use it as a context manager)
    to drop the spool file."""

    def __init__(self, dataset: Dataset, level: np.ndarray) -> None:
        self.dataset, self.level = dataset, level
        self.outcomes: list[Outcome] = []
        # unlinked at once: it goes when closed or collected, and is never left on disk
        self._spool = tempfile.TemporaryFile("w+b", prefix="harness-items-")  # noqa: SIM115

    def __enter__(self) -> CellItems:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()

    def add(self, results: Sequence[ItemResult]) -> None:
        """Write the results' evidence (all but their per-item scores, known at the end) and
        keep their outcomes."""
        from harness.runner.evidence import item_evidence

        start = len(self.outcomes)
        items = [self.dataset[start + n] for n in range(len(results))]
        self._spool.writelines(json_line(line) + b"\n"
                               for line in item_evidence(items, results, self.level[start:]))
        self.outcomes += [outcome(r) for r in results]

    def evidence(self, header: dict[str, Any], per_item: dict[int, dict[str, float]]
                 ) -> ItemEvidence:
        """The cell's evidence: the spooled lines with each item's scores (``per_item``, by item
        index) added as they are written out."""
        return ItemEvidence(header, SpooledItems(self._spool, per_item))


class SpooledItems:
    """Evidence items held as JSON lines (UTF-8) in a spool file, each completed with its scores
    when read; iterable any number of times."""

    def __init__(self, spool: Any, per_item: dict[int, dict[str, float]]) -> None:
        self._spool, self._per_item = spool, per_item

    def json_lines(self) -> Iterator[str]:
        self._spool.flush()
        self._spool.seek(0)
        for n, line in enumerate(self._spool):
            scores = json_line(self._per_item.get(n))
            yield (line.rstrip()[:-1] + b',"scores":' + scores + b"}").decode()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (json.loads(line) for line in self.json_lines())
