"""A run that stopped before every selected cell ran: Ctrl-C, ``-x``/``--maxfail``, a worker lost.

Its report holds only the cells recorded by then, and tables without the others look like a
smaller grid. The pytest plugin writes ``stopped.json`` into the run folder when the session
ends early, and every report built from that folder (at the session's end, by ``python -m
harness.report`` later, by a merge that takes it in) says so above its tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import _json
from harness._atomic import write_whole
from harness._regular import read_regular
from harness._values import whole_number

STOPPED_FILE = "stopped.json"


def mark_stopped(run_dir: Path, reason: str, counts: tuple[int, int] | None = None) -> None:
    """Say in ``run_dir`` that its session stopped early (``reason``); ``counts``: how many of
    its selected tests finished, and how many were selected."""
    said: dict[str, Any] = {"reason": reason}
    if counts is not None:
        said.update(tests_finished=counts[0], tests_selected=counts[1])
    write_whole(Path(run_dir) / STOPPED_FILE, json.dumps(said, sort_keys=True))


def read_stopped(run_dir: Path) -> dict[str, Any] | None:
    """The run's stop, or None where it ran to its end. A marker that cannot be read still says
    the run stopped early, without its counts."""
    path = Path(run_dir) / STOPPED_FILE
    if not path.exists():
        return None
    unknown = {"reason": f"unknown: its {STOPPED_FILE} cannot be read"}
    try:
        data = _json.loads(read_regular(path))
    except (OSError, ValueError):
        return unknown
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return unknown
    reason = data["reason"][:300]
    try:
        counts = {key: whole_number(key, data.get(key), least=0)
                  for key in ("tests_finished", "tests_selected")}
    except ValueError:  # counts that are not counts are dropped, the stop still said
        return {"reason": reason}
    return {"reason": reason, **counts}


def merged_stops(runs: list[Path]) -> dict[str, Any] | None:
    """The stops of several runs merged into one report: each named by its run, the counts
    summed where every stopped run has them (shards select disjoint cells)."""
    stops = {Path(run).name: stop for run in runs if (stop := read_stopped(run)) is not None}
    if not stops:
        return None
    merged: dict[str, Any] = {"reason": "; ".join(f"{run}: {stop['reason']}"
                                                  for run, stop in stops.items())}
    if all("tests_selected" in stop for stop in stops.values()):
        for key in ("tests_finished", "tests_selected"):
            merged[key] = sum(stop[key] for stop in stops.values())
    return merged


def stopped_sentence(stop: dict[str, Any], n_cells: int) -> str:
    """What a report says above its tables of a run that stopped early."""
    counted = (f"{stop['tests_finished']} of its {stop['tests_selected']} selected tests "
               "finished, and " if "tests_selected" in stop else "")
    return (f"This run stopped before every selected cell ran ({stop['reason']}): {counted}"
            f"the tables hold only the {n_cells} cell{'' if n_cells == 1 else 's'} recorded by "
            "then. The same command run again runs them all, the model calls already made read "
            "from the generation cache.")
