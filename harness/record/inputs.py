"""What produced a cell's outputs, read from its record's metadata, and how two sets of inputs
differ: the key of a cell's snapshot, the ``inputs`` kept with its baseline, and what the gate
and ``compare`` name where a run was given other inputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.record.cell import CellRecord


def inputs_of(record: CellRecord) -> dict[str, Any]:
    """Everything in a record's metadata that determines its outputs (not where or when it ran,
    nor the device it ran on); a setting added later (:data:`IMPLIED`) is left out where it holds
    what every run before it did, so that an upgrade that adds one keeps each snapshot's key and
    each baseline's inputs."""
    meta = record.meta
    model, dataset, prompts = meta.get("model") or {}, meta.get("dataset") or {}, meta.get("prompts") or {}
    chance = meta.get("decoding") is None  # a chance baseline: no prompt, no decoding
    inputs = {
        "model": record.model, "revision": model.get("revision"), "dtype": model.get("dtype"),
        "model_options": model.get("options") or {},
        "verifier": meta.get("verifier"), "verifier_revision": meta.get("verifier_revision"),
        "dataset": record.dataset, "manifest": dataset.get("manifest"),
        "options": dataset.get("options") or {}, "strategy": record.strategy,
        "strategy_config": _without_implied(meta.get("strategy_config"), "strategy_config."),
        "decoding": meta.get("decoding"),
        "prompts": {k: prompts.get(k) for k in ("set", "version", "templates")},
        "seed": meta.get("seed"),
    }
    served = meta.get("served_by")
    if isinstance(served, Mapping) and served:  # the snapshots an API's answers came from: an
        # alias moved to another is another model (a local model's answers name none: no key)
        inputs["served_by"] = {model: sorted(names) for model, names in sorted(served.items())
                               if isinstance(names, Mapping)}
    return {k: v for k, v in inputs.items() if not (chance and k in ("prompts", "strategy_config"))}


# settings recorded since a later version, each with what every run before it did: a record from
# before names no change where a new one holds that value
IMPLIED = {"strategy_config.verifier_ties": "first", "strategy_config.invalid": "left_out"}


def _without_implied(settings: Any, prefix: str) -> Any:
    """``settings`` less each :data:`IMPLIED` one at its implied value."""
    if not isinstance(settings, Mapping):
        return settings
    return {k: v for k, v in settings.items()
            if not (f"{prefix}{k}" in IMPLIED and IMPLIED[f"{prefix}{k}"] == v)}


def input_changes(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "",
                  leave_out: tuple[str, ...] = ()) -> list[str]:
    """``strategy_config.beams 5 -> 1``: each input, nested names joined by dots, whose value
    differs (those named in ``leave_out`` left out; a setting one side predates, :data:`IMPLIED`,
    read as what runs did before it)."""
    out = []
    for key in sorted(set(before) | set(after), key=str):
        name = f"{prefix}{key}"
        old, new = (before.get(key, IMPLIED.get(name)), after.get(key, IMPLIED.get(name)))
        if old == new or name in leave_out:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out += input_changes(old, new, f"{name}.", leave_out)
        else:
            out.append(f"{name} {_short(old)} -> {_short(new)}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
