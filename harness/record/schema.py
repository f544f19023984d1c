"""What a sound cell record holds: the schema's version, its scores, and the checks a record read
from a file passes before the report, the gate and ``compare`` use it (a damaged file is a bad
cell named with its reason, never a crash of what reads it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.resampling import INTERVALS

SCHEMA_VERSION = 1
SCORES = ("js", "jsd", "bc", "r2", "acc", "f1", "uar", "acc_untied", "f1_untied",
          "uar_untied")  # mean and 95% CI


class RecordError(ValueError):
    """Data that is not a cell record (a truncated file, ``[]``, a metric that is not a number)."""


class RecordSchemaError(RecordError):
    """A record written under another schema version than this harness reads."""


def check_record(data: Mapping[str, Any]) -> None:
    """The fields the report reads, with their types (a record that passes builds a report)."""
    for key in ("cell", "model", "dataset", "strategy"):
        if not isinstance(data.get(key), str):
            raise RecordError(f"not a cell record: {key!r} is missing or not a string")
    if not isinstance(data.get("labels"), list) or not isinstance(data.get("metrics"), Mapping):
        raise RecordError("not a cell record: 'labels' (a list) or 'metrics' (an object) missing")
    metrics = data["metrics"]
    for key in ("n_items", "n_valid"):
        if not _is_count(metrics.get(key)):
            raise RecordError(f"not a cell record: metric {key!r} is missing or not a count (a "
                              "whole number of at least 0)")
    if not is_number(metrics.get("valid")):  # NaN for a cell of no items
        raise RecordError("not a cell record: metric 'valid' is missing or not a number")
    for key in SCORES:  # a score is there only where some item was scored: its mean is finite
        score = metrics.get(key)
        if score is not None and not (isinstance(score, Mapping) and _is_finite(score.get("mean"))
                                      and _is_interval(score.get("ci95"))):
            raise RecordError(f"not a cell record: metric {key!r} is not a mean (a finite number) "
                              "with its ci95")
    _check_extras(metrics)
    _check_meta(data.get("meta", {}))


def _check_extras(metrics: Mapping[str, Any]) -> None:
    """The summary's parts the report draws and tabulates: the ambiguity levels (edges, counts
    and each metric's medians, one per level), tokens, cost, W-BoN's α comparison."""
    if metrics.get("interval", "percentile") not in INTERVALS:
        raise RecordError(f"not a cell record: 'metrics.interval' is not one of {', '.join(INTERVALS)}")
    resamples = metrics.get("n_resamples")
    if resamples is not None and not (type(resamples) is int and resamples >= 1):
        raise RecordError("not a cell record: 'metrics.n_resamples' is not a whole number of at "
                          "least 1")
    if not _levels_ok(metrics.get("bins") or {}):
        raise RecordError("not a cell record: 'metrics.bins' is not edges, counts and a median "
                          "per level")
    if not is_number(metrics.get("tokens", 0)) or not (
            metrics.get("cost_usd") is None or is_number(metrics["cost_usd"])):
        raise RecordError("not a cell record: 'metrics.tokens' or 'metrics.cost_usd' is not a number")
    if not _verifier_use_ok(metrics.get("verifier") or {}):
        raise RecordError("not a cell record: 'metrics.verifier' is not counts of items (at most "
                          "its 'items' shared a top score, fewer all alike) and [score, count] pairs")
    if not _choices_ok(metrics.get("alpha_sensitivity") or {}):
        raise RecordError("not a cell record: 'metrics.alpha_sensitivity' is not numbers per α")
    if not _choices_ok(metrics.get("invalid") or {}):
        raise RecordError("not a cell record: 'metrics.invalid' is not numbers per reading of "
                          "the invalid items")


def _choices_ok(table: Any) -> bool:
    """A comparison of a setting's choices (W-BoN's α, ALM-v's tie rule, the readings of
    invalid items): numbers per choice."""
    return isinstance(table, Mapping) and all(
        isinstance(row, Mapping) and all(map(_choice_entry_ok, row.items()))
        for row in table.values())


def _choice_entry_ok(entry: tuple[Any, Any]) -> bool:
    """One entry of a choice's row (W-BoN's α, ALM-v's tie rule, a reading of invalid items):
    ``n`` a count, a ``*_change_ci`` two numbers or None (the bootstrap could not draw it),
    another ``*_ci`` two bounds or None, anything else a number or None."""
    key, value = entry
    if key == "n":
        return _is_count(value)
    if str(key).endswith("_change_ci"):  # the alpha table reads its bounds
        return value is None or (_is_interval(value) and None not in value)
    if str(key).endswith("_ci"):  # the invalid table reads its bounds
        return value is None or _is_interval(value)
    return is_number_or_none(value)


def _verifier_use_ok(use: Any) -> bool:
    """How the verifier's scores told candidates apart (the verifier table reads it): counts, the
    items' in order, the most frequent scores as ``[score, count]`` pairs, a mean largest
    weight in [0, 1] where kept, and for ALM-v its numbers under each tie rule (``ties``)."""
    if not isinstance(use, Mapping) or not use:
        return isinstance(use, Mapping)
    counts = [use.get(key, -1) for key in ("scored", "items", "top_shared", "all_equal")]
    if not all(map(_is_count, counts)):
        return False
    common, weight = use.get("common"), use.get("weight_max", 1.0)
    return (counts[1] >= counts[2] >= counts[3] and _choices_ok(use.get("ties") or {})
            and _is_finite(weight) and 0 <= weight <= 1
            and isinstance(common, list) and all(
                isinstance(pair, list) and len(pair) == 2 and _is_finite(pair[0])
                and _is_count(pair[1]) for pair in common))


def _levels_ok(bins: Any) -> bool:
    if not isinstance(bins, Mapping):
        return False
    edges, counts = bins.get("edges", []), bins.get("counts", [])
    if not (isinstance(edges, list) and isinstance(counts, list) and all(map(is_number, edges))
            and all(map(is_number, counts)) and len(counts) == max(len(edges) - 1, 0)
            and isinstance(bins.get("method", ""), str)):  # levels need their edges and method
        return False
    medians = [bins.get(m, [None] * len(counts)) for m in ("js", "bc", "r2")]
    intervals = [bins[key] for key in bins if str(key).endswith("_ci")]  # none before they were kept
    return (all(isinstance(column, list) and len(column) == len(counts)
                and all(map(is_number_or_none, column)) for column in medians)
            and all(isinstance(column, list) and len(column) == len(counts)
                    and all(v is None or _is_interval(v) for v in column) for column in intervals))


def _is_interval(value: Any) -> bool:
    """Two bounds, each a number or None (an interval the bootstrap could not draw)."""
    return isinstance(value, list) and len(value) == 2 and all(map(is_number_or_none, value))


def is_number_or_none(value: Any) -> bool:
    return value is None or is_number(value)


def _check_meta(meta: Any) -> None:
    """The metadata the report, ``compare`` and the gate read: the corpus's options and item count,
    W-BoN's α, the model's and the prompts' descriptions."""
    if not isinstance(meta, Mapping):
        raise RecordError("not a cell record: 'meta' is not an object")
    dataset = meta.get("dataset", {})
    if not isinstance(dataset, Mapping) or not isinstance(dataset.get("options", {}), Mapping) or (
            "n_items" in dataset and not _is_count(dataset["n_items"])):
        raise RecordError("not a cell record: 'meta.dataset' is not an object with 'options' (an "
                          "object) and 'n_items' (a whole number of at least 0)")
    if not isinstance(meta.get("strategy_config", {}), Mapping):
        raise RecordError("not a cell record: 'meta.strategy_config' is not an object")
    for part in ("model", "prompts"):  # what produced the outputs: read by compare and the gate
        if not isinstance(meta.get(part) or {}, Mapping):
            raise RecordError(f"not a cell record: 'meta.{part}' is neither an object nor null")
    served = meta.get("served_by")
    if served is not None and not (isinstance(served, Mapping) and all(
            isinstance(names, Mapping) and names and all(
                isinstance(name, str) and _is_count(n) for name, n in names.items())
            for names in served.values())):
        raise RecordError("not a cell record: 'meta.served_by' is not an object of models, each "
                          "an object of the names their answers came under with how many")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    """A whole number of at least 0 (``5.0`` too): a NaN or infinite count crashed the report."""
    return _is_finite(value) and value >= 0 and value == int(value)


def evidence_problem(item: Mapping[str, Any]) -> str | None:
    """Why an evidence line (an item of ``<cell>.items.jsonl``) cannot be shown, or None: the
    fields its readers iterate must be lists (``votes``, ``human`` and ``probs`` of numbers,
    ``notes``, ``candidates`` of objects, a candidate's ``label_logprobs``), each one or null.
    Types are compared exactly, as JSON decodes them (a cost like the line's own decoding's
    otherwise, on every item a report page embeds)."""
    for key in ("votes", "human", "probs"):
        value = item.get(key)
        if value is not None and not (type(value) is list and _NUMBERS.issuperset(map(type, value))):
            return f"{key!r} is not a list of numbers"
    if type(item.get("notes", [])) not in _LIST_OR_NULL:
        return "'notes' is not a list"
    candidates = item.get("candidates", [])
    if type(candidates) not in _LIST_OR_NULL or not all(
            type(c) is dict and type(c.get("label_logprobs")) in _LIST_OR_NULL for c in candidates or ()):
        return "'candidates' is not a list of objects (each one's 'label_logprobs' a list)"
    return None


_NUMBERS = frozenset({int, float, type(None)})  # JSON's numbers and null (true is not one)
_LIST_OR_NULL = (list, type(None))
