"""The verifier table: how a verifier's scores told each cell's candidates apart, to read ``alm-v``
against ``bon`` and ``w-alm-v`` against an even mixture (a verifier that gives every candidate
0.9 picks nothing: ``alm-v`` then takes the likeliest beam, as ``bon`` does, or under
``verifier_ties="mean"`` the mean of the candidates)."""

from __future__ import annotations

from harness.record import CellRecord

Table = tuple[list[str], list[list[tuple[str, str]]]]
SHOWN_SCORES = 3  # the commonest scores a row names


def verifier_table(cells: list[CellRecord]) -> Table:
    """A row per cell whose candidates a verifier scored: the candidates it scored and those it
    could not, the items it compared (two scored candidates or more), of those the items whose
    top score was shared and those scored all alike, the mean largest weight where the items
    weighed their candidates, and its commonest scores with their shares."""
    header = ["Model", "Dataset", "Strategy", "Verifier", "ties", "scored", "unscored", "items",
              "top shared", "all alike", "max weight", "commonest scores"]
    rows = []
    for c in sorted(cells, key=lambda c: (c.model, c.dataset, c.strategy)):
        use = c.metrics.verifier
        if not use:
            continue
        items, scored = int(use["items"]), int(use["scored"])
        rows.append([(c.model, ""), (c.dataset, ""), (c.strategy, ""),
                     (str(c.meta.get("verifier") or ""), ""),
                     (tie_rule(c) if c.strategy == "alm-v" else "", ""), (str(scored), ""),
                     (str(c.metrics.verifier_unscored), ""), (str(items), ""),
                     (_of(int(use["top_shared"]), items), ""),
                     (_of(int(use["all_equal"]), items), ""),
                     (f"{use['weight_max']:.4f}" if "weight_max" in use else "", ""),
                     (_commonest(use["common"], scored), "")])
    return header, rows


def top_shared_lines(cells: list[CellRecord], ties: str = "first") -> str:
    """``tiny-qwen2-audio crema_d 26 of 26 items``, for each ``alm-v`` cell that took tied
    candidates by the rule ``ties`` (:func:`tie_rule`) where the verifier's top score was shared
    on some item (joined with ``; ``), or ``""``."""
    return "; ".join(f"{c.model} {c.dataset} {int(c.metrics.verifier['top_shared'])} of "
                     f"{int(c.metrics.verifier['items'])} items"
                     for c in sorted(cells, key=lambda c: (c.model, c.dataset))
                     if c.strategy == "alm-v" and c.metrics.verifier.get("top_shared")
                     and tie_rule(c) == ties)


def tie_rule(cell: CellRecord) -> str:
    """How the cell's ``alm-v`` took candidates sharing the top score: its record's
    ``verifier_ties`` (``first``, the only rule before the setting was recorded, or ``mean``)."""
    config = cell.meta.get("strategy_config")
    return str(config.get("verifier_ties", "first")) if isinstance(config, dict) else "first"


def _of(part: int, whole: int) -> str:
    """``26 (100%)``; the count alone where there is no whole."""
    return f"{part} ({part / whole:.0%})" if whole else str(part)


def _commonest(common: list[list[float]], scored: int) -> str:
    """``0.9 (100%)``, ``0.8 (61%), 0.9 (30%), 0.7 (9%)``: the commonest scores, each with its
    share of the scored candidates."""
    return ", ".join(f"{score:g} ({n / scored:.0%})" for score, n in common[:SHOWN_SCORES]
                     if scored)
