"""What a cell's record holds: its metrics, its items, its evidence (checked against
:mod:`harness.record.schema` when read)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness._names import unknown_name
from harness.record.json_line import json_line
from harness.record.schema import (
    SCHEMA_VERSION,
    SCORES,
    RecordError,
    RecordSchemaError,
    check_record,
    is_number,
    is_number_or_none,
)
from harness.score_columns import ScoreColumns


@dataclass(frozen=True)
class Estimate:
    """A metric's mean over the cell's valid items and its percentile-bootstrap 95% CI (taken
    as :attr:`CellMetrics.interval` says)."""

    mean: float
    ci95: tuple[float, float]


UNIFORM_GUESS = "uniform_guess"  # the rule of an item scored as a uniform guess (invalid="uniform")


def _bound(value: float | None) -> float | None:
    """A CI's end as the file holds it: null where there is none (one item: NaN in memory), so
    that the record stays strict JSON."""
    return None if value is None or math.isnan(value) else value


def _interval(bounds: Any) -> tuple[float, float]:
    """A CI read back: a null end (no interval) as NaN, as it was computed."""
    low, high = (math.nan if b is None else float(b) for b in bounds)
    return low, high


@dataclass(frozen=True)
class CellMetrics:
    """What :func:`harness.metrics.summarize` and the runner computed for one cell.

    Attributes:
        n_items: Items in the cell; ``n_valid`` of them have a prediction of the model's own
            (``valid``: the share; under ``invalid="uniform"`` the means are also over the
            answers scored as a uniform guess).
        scores: ``js``, ``jsd``, ``bc``, ``r2``, ``acc``, ``f1``, ``uar`` (ties in the
            annotators' votes to the first label, every item), ``acc_untied``, ``f1_untied``,
            ``uar_untied`` (tied items left out); none when no item is valid (nor ``uar`` in a
            record written before it was).
        n_scored: Items whose annotator majority is not tied (the untied variants count these);
            ``n_tied`` the others.
        rules: Items per parsing rule (``"None"``: no rule matched).
        errors: Items whose clip or model call failed; ``noted``: items with notes;
            ``no_transcript``: items whose transcript is missing (the prompt's is empty).
        verifier_unscored: Candidates whose verifier reply was not a score (not one number in
            [0, 1]); they take no part in the verifier strategies' choice.
        verifier: How the verifier's scores told the candidates apart
            (:func:`harness.runner.outcomes.verifier_use`: ``scored``, ``items``, ``top_shared``,
            ``all_equal``, ``common``); empty where no verifier scored (or in a record file
            written before it was kept).
        bins: Entropy-bin edges, counts and per-bin medians of each distribution metric, each
            median's 95% CI beside it (``js_ci``: a pair per level, None under 6 items).
        tokens: Tokens generated for the candidates (not the verifier's replies); ``cost_usd``: the
            API cost, verifier included, None when a price is unknown.
        alpha_sensitivity: For W-BoN, the mean JS, BC and R² under each choice of alpha, from the
            same candidates (``{"raw": {"js": ..., "n": ...}, "mean": ..., "uniform": ...}``),
            and for ``mean`` and ``uniform`` the paired 95% CI of each one's change from ``raw``
            (``js_change_ci``).
        interval: How the bootstrap CIs' level was taken (:func:`harness.resampling.interval_level`):
            ``expanded`` or ``percentile`` (a record file written before there was a choice
            reads as ``percentile``, the intervals it holds).
        n_resamples: The bootstrap resamples asked for (each CI draws at least these, more where
            its level needs them: :func:`harness.resampling.resamples_for`); None in a record
            file written before it was kept.
        invalid: Where some item is invalid, the mean JS, BC and R² under each reading of the
            invalid items: ``left_out`` (the cell's own, over its valid items) and ``uniform``
            (each invalid item scored as a uniform guess, over every item, with each mean's 95%
            CI, ``js_ci``), each with the items it is over (``n``); empty where every item is
            valid (and in a record file written before it was kept).
    """

    n_items: int
    n_valid: int
    valid: float
    scores: Mapping[str, Estimate] = field(default_factory=dict)
    n_scored: int | None = None
    n_tied: int | None = None
    rules: Mapping[str, int] = field(default_factory=dict)
    errors: int = 0
    noted: int = 0
    no_transcript: int = 0
    verifier_unscored: int = 0
    verifier: Mapping[str, Any] = field(default_factory=dict)
    bins: Mapping[str, Any] = field(default_factory=dict)
    tokens: int = 0
    cost_usd: float | None = None
    alpha_sensitivity: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    interval: str = "expanded"
    n_resamples: int | None = None
    invalid: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def guessed(self) -> int:
        """The items scored as a uniform guess (``StrategyConfig.invalid="uniform"``: answers
        that gave no distribution), counted in :attr:`rules` (0 where none, or in a record
        whose count is not a whole number)."""
        count = self.rules.get(UNIFORM_GUESS, 0)
        return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0

    def mean(self, name: str) -> float:
        """The metric's mean (one of :data:`SCORES`), NaN when the cell has none (no valid
        item); a name that is no metric is a ``KeyError``, not a NaN that reads as "no items"."""
        if name not in SCORES:
            raise KeyError(unknown_name("metric", name, SCORES))
        return self.scores[name].mean if name in self.scores else math.nan

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_items": self.n_items, "n_valid": self.n_valid, "valid": self.valid,
                               "interval": self.interval, "n_resamples": self.n_resamples}
        out.update({k: {"mean": e.mean, "ci95": [_bound(b) for b in e.ci95]}
                    for k, e in self.scores.items()})
        if self.n_scored is not None:
            out["n_scored"], out["n_tied"] = self.n_scored, self.n_tied
        out.update(rules=dict(self.rules), errors=self.errors, noted=self.noted,
                   no_transcript=self.no_transcript,
                   verifier_unscored=self.verifier_unscored, bins=dict(self.bins),
                   tokens=self.tokens, cost_usd=self.cost_usd)
        if self.verifier:
            out["verifier"] = dict(self.verifier)
        if self.alpha_sensitivity:
            out["alpha_sensitivity"] = {k: dict(v) for k, v in self.alpha_sensitivity.items()}
        if self.invalid:
            out["invalid"] = {k: dict(v) for k, v in self.invalid.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellMetrics:
        scores = {k: Estimate(data[k]["mean"], _interval(data[k]["ci95"])) for k in SCORES if k in data}
        return cls(data["n_items"], data["n_valid"], data["valid"], scores, data.get("n_scored"),
                   data.get("n_tied"), dict(data.get("rules", {})), data.get("errors", 0),
                   data.get("noted", 0), data.get("no_transcript", 0),
                   data.get("verifier_unscored", 0), dict(data.get("verifier") or {}),
                   dict(data.get("bins", {})), data.get("tokens", 0), data.get("cost_usd"),
                   dict(data.get("alpha_sensitivity", {})), data.get("interval", "percentile"),
                   data.get("n_resamples"), dict(data.get("invalid") or {}))


@dataclass(frozen=True, slots=True)  # a record holds one per item: no __dict__ each
class ItemRecord:
    """One item's prediction (None when invalid) and how it came about; for an invalid item,
    ``answer`` keeps what the model said (its first candidate, cut at 2,000 characters: a
    refusal, a reply with no distribution)."""

    id: str
    probs: tuple[float, ...] | None
    rule: str | None = None
    reason: str = ""
    error: str | None = None
    tokens: int = 0
    notes: tuple[str, ...] = ()
    answer: str | None = None
    scores: Mapping[str, float] | None = None  # a valid item's js, jsd, bc, r2 (for pairing)
    weight_max: float | None = None  # a mixture's largest candidate weight
    weight_entropy: float | None = None  # and its weights' entropy in bits (0: one candidate)

    def with_scores(self, scores: Mapping[str, float] | None) -> ItemRecord:
        """This row with its per-item scores (``dataclasses.replace``, at a sixth of its cost)."""
        return ItemRecord(self.id, self.probs, self.rule, self.reason, self.error, self.tokens,
                          self.notes, self.answer, scores, self.weight_max, self.weight_entropy)

    def all_finite(self) -> bool:
        """Whether every number the row holds is finite or None (NaN and infinities are not
        JSON: a row holding one is written by the standard library, which keeps them)."""
        numbers = (*(self.probs or ()), *(self.scores or {}).values(), self.weight_max,
                   self.weight_entropy)
        return all(x is None or math.isfinite(x) for x in numbers)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "probs": None if self.probs is None else list(self.probs),
                               "rule": self.rule, "reason": self.reason, "error": self.error,
                               "tokens": self.tokens, "notes": list(self.notes)}
        if self.answer is not None:
            out["answer"] = self.answer
        if self.scores is not None:
            out["scores"] = dict(self.scores)
        if self.weight_max is not None:
            out["weight_max"], out["weight_entropy"] = self.weight_max, self.weight_entropy
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemRecord:
        """Raises ValueError (or KeyError, TypeError) where a field the report, the gate and
        ``compare`` read has another type: the id, the prediction, the scores."""
        probs, scores = data.get("probs"), data.get("scores")
        if not isinstance(data["id"], str):
            raise ValueError("an item's id is not a string")
        if probs is not None and not (isinstance(probs, list) and all(map(is_number, probs))):
            raise ValueError(f"item {data['id']!r}: 'probs' is not a list of numbers")
        if scores is not None and not (isinstance(scores, Mapping)
                                       and all(map(is_number_or_none, scores.values()))):
            raise ValueError(f"item {data['id']!r}: 'scores' is not numbers by metric")
        return cls(data["id"], None if probs is None else tuple(probs), data.get("rule"),
                   data.get("reason", ""), data.get("error"), data.get("tokens", 0),
                   tuple(data.get("notes", ())), data.get("answer"),
                   None if data.get("scores") is None else dict(data["scores"]),
                   data.get("weight_max"), data.get("weight_entropy"))


@dataclass(frozen=True)
class ItemEvidence:
    """Per-item evidence (see :mod:`harness.runner.evidence`): a header (labels, the prompt
    templates) and one mapping per item; written beside the record as ``<cell>.items.jsonl``."""

    header: Mapping[str, Any]
    items: Iterable[Mapping[str, Any]]  # iterable more than once

    def json_lines(self) -> Iterator[str]:
        """Each item as one line of JSON (items that hold their lines already give them)."""
        lines = getattr(self.items, "json_lines", None)
        if lines is not None:
            yield from lines()
            return
        for item in self.items:
            yield json_line(item).decode()


@dataclass(frozen=True)
class CellRecord:
    """Everything one cell produced: its metrics, per-item results and metadata.

    Attributes:
        cell: ``<model>-<dataset>-<strategy>``.
        labels: The corpus's classes, in the order of every ``probs``.
        seconds: Wall time of the cell; ``gpu_seconds`` the same when it ran on a GPU, else 0.
        meta: Model revision, dataset manifest and options, prompt hash, decoding, seed, package
            versions, git commit, host, finish time.
    """

    cell: str
    model: str
    dataset: str
    strategy: str
    labels: tuple[str, ...]
    metrics: CellMetrics
    seconds: float
    gpu_seconds: float
    items: tuple[ItemRecord, ...]
    meta: Mapping[str, Any]
    schema_version: int = SCHEMA_VERSION
    evidence: ItemEvidence | None = field(default=None, compare=False, repr=False)
    columns: ScoreColumns | None = field(default=None, compare=False, repr=False)

    def score_columns(self) -> ScoreColumns:
        """The items' scores as columns: read with the record's summary (which has no items),
        or made from its items once, and again for a copy (``dataclasses.replace`` carries the
        columns over, and with other items they would be another item set's)."""
        columns = self.columns
        if columns is None or (self.items and columns.made_from is not self.items):
            columns = ScoreColumns.from_items(self.items)
            object.__setattr__(self, "columns", columns)
        return columns

    def commonest_failure(self) -> str:
        """Why items failed, the commonest reason first (``"12 of 26 items: HTTP 503 ..."``),
        for an assertion message; empty when every item is valid."""
        reasons: dict[str, list] = {}  # a reason without the item's own id and clip: [count, first]
        for item in self.items:
            if item.probs is None:
                why = item.error or item.reason or "no reason recorded"
                kind = ": ".join("" if item.id in part else part for part in why.split(": "))
                reasons.setdefault(kind, [0, why])[0] += 1
        if not reasons:
            return ""
        count, why = max(reasons.values(), key=lambda found: found[0])
        alike = " alike, the first" if count > 1 else ""
        others = len(reasons) - 1
        more = f" ({others} other reason{'s' if others > 1 else ''})" if others else ""
        return f"{count} of {len(self.items)} items failed{alike} with: {why[:300]}{more}"

    def to_json(self, items: bool = True) -> dict[str, Any]:
        """The record as JSON data (``items=False``: without the per-item results)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version, "cell": self.cell, "model": self.model,
            "dataset": self.dataset, "strategy": self.strategy, "labels": list(self.labels),
            "metrics": self.metrics.to_json(), "seconds": self.seconds,
            "gpu_seconds": self.gpu_seconds}
        if items:
            out["items"] = [i.to_json() for i in self.items]
        out["meta"] = dict(self.meta)
        return out

    @classmethod
    def from_json(cls, data: Any) -> CellRecord:
        """The record from its JSON data, checked against the schema.

        Raises:
            RecordSchemaError: the data is of another schema version (both are named).
            RecordError: the data is not a cell record (what is wrong is named).
        """
        if not isinstance(data, Mapping):
            raise RecordError(f"not a cell record: a JSON {type(data).__name__}, not an object")
        if "schema_version" not in data:
            raise RecordError("not a cell record: it has no 'schema_version'")
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise RecordSchemaError(f"cell record {data.get('cell', '?')!r} has schema version "
                                    f"{version}; this harness reads version {SCHEMA_VERSION}")
        check_record(data)
        try:
            return cls(data["cell"], data["model"], data["dataset"], data["strategy"],
                       tuple(data["labels"]), CellMetrics.from_json(data["metrics"]),
                       float(data.get("seconds", 0.0)), float(data.get("gpu_seconds", 0.0)),
                       tuple(ItemRecord.from_json(i) for i in data.get("items", ())),
                       dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"not a cell record: {type(exc).__name__}: {exc}") from None
