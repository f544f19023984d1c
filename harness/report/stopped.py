"""A run that stopped before every selected cell ran: Ctrl-C, ``-x``/``--maxfail``, a worker lost,
or a process killed outright (SIGKILL, the out-of-memory killer, a job's time limit).

Its report holds only the cells recorded by then, and tables without the others look like a
smaller grid. The pytest plugin writes ``stopped.json`` into the run folder when the session
ends early; as a session's first cell starts it writes ``running.json``, which the session's end
removes, so that a folder still holding it is of a run that never reached its end (nothing of
it ran to write ``stopped.json``) or of one still running. Every report built from that folder
(at the session's end, by ``python -m harness.report`` later, by a merge that takes it in) says
so above its tables.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness import _json
from harness._atomic import write_whole
from harness._regular import read_regular
from harness._values import whole_number

STOPPED_FILE = "stopped.json"
RUNNING_FILE = "running.json"
_PROC = Path("/proc")  # Linux's: a process's state and start, so that a process id reused later
# by another process, or a killed process not yet reaped, is not taken for the run's


def mark_stopped(run_dir: Path, reason: str, counts: tuple[int, int] | None = None,
                 unfinished: Sequence[str] = ()) -> None:
    """Say in ``run_dir`` that its session stopped early (``reason``); ``counts``: how many of
    its selected tests finished, and how many were selected; ``unfinished``: the cells (tests)
    selected that never finished."""
    said: dict[str, Any] = {"reason": reason}
    if counts is not None:
        said.update(tests_finished=counts[0], tests_selected=counts[1])
    if unfinished:
        said["unfinished"] = list(unfinished)
    write_whole(Path(run_dir) / STOPPED_FILE, json.dumps(said, sort_keys=True))


def mark_running(run_dir: Path, tests_selected: int, pid: int, selected: Sequence[str] = ()
                 ) -> None:
    """Say in ``run_dir`` that its session (process ``pid`` on this host, ``tests_selected``
    tests selected, ``selected`` their cells' ids) is under way, until :func:`clear_running` at
    its end."""
    said: dict[str, Any] = {"host": platform.node(), "pid": pid, "tests_selected": tests_selected,
                            "started": _process_start(pid)}
    if selected:
        said["selected"] = list(selected)
    write_whole(Path(run_dir) / RUNNING_FILE, json.dumps(said, sort_keys=True))


def clear_running(run_dir: Path) -> None:
    """The session of ``run_dir`` reached its end (having said in ``stopped.json`` whether it
    stopped early)."""
    (Path(run_dir) / RUNNING_FILE).unlink(missing_ok=True)


def read_stopped(run_dir: Path) -> dict[str, Any] | None:
    """The run's stop, or None where it ran to its end. A marker that cannot be read still says
    the run stopped early, without its counts. A run whose session never reached its end says
    so too, or, where its process is still alive on this host, that it is running (``running``:
    true)."""
    path = Path(run_dir) / STOPPED_FILE
    if not path.exists():
        return _unended(Path(run_dir) / RUNNING_FILE)
    unknown = {"reason": f"unknown: its {STOPPED_FILE} cannot be read"}
    try:
        data = _json.loads(read_regular(path))
    except (OSError, ValueError):
        return unknown
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return unknown
    reason = data["reason"][:300]
    unfinished = _names(data.get("unfinished"))
    try:  # tests_selected alone where a merge summed no tests_finished
        counts = {key: whole_number(key, data[key], least=0)
                  for key in ("tests_finished", "tests_selected") if key in data}
    except ValueError:  # counts that are not counts are dropped, the stop still said
        counts = {}
    return {"reason": reason, **(counts if "tests_selected" in counts else {}),
            **({"unfinished": unfinished} if unfinished else {})}


def _names(value: Any) -> list[str]:
    """The cells a stop lists as never finished, where it lists them as text ([] otherwise)."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        return []
    return [name[:300] for name in value]


def _unended(path: Path) -> dict[str, Any] | None:
    """What ``running.json`` left by a session that has not ended says: None where there is none."""
    if not path.exists():
        return None
    try:
        data = _json.loads(read_regular(path))
        pid = whole_number("pid", data["pid"])
        selected: dict[str, Any] = {
            "tests_selected": whole_number("tests_selected", data["tests_selected"], 0)}
        if names := _names(data.get("selected")):
            selected["selected"] = names
        host, started = data["host"], data.get("started")
        if not isinstance(host, str):
            raise TypeError("host")
    except (OSError, ValueError, TypeError, KeyError):
        return {"reason": f"its session never reached its end, or has not yet: its {RUNNING_FILE} "
                          "cannot be read"}
    if host != platform.node():
        return {"reason": f"its session had not ended when last seen: still running on {host[:100]}, "
                          f"or killed there", **selected}
    if _alive(pid, started):
        return {"reason": f"still running: process {pid} on this host", "running": True,
                **selected}
    return {"reason": "its session never reached its end: its process was killed (SIGKILL, the "
                      "out-of-memory killer, a job's time limit) or its machine stopped", **selected}


def _alive(pid: int, started: Any) -> bool:
    """Whether the process ``pid`` that started at ``started`` (its start in ``/proc``, where the
    system has one) is alive on this host."""
    if (_PROC / "self" / "stat").exists():
        now = _process_start(pid)
        return now is not None and started in (None, now)
    try:  # signal 0 sends nothing
        os.kill(pid, 0)
    except PermissionError:  # another user's
        return True
    except (OSError, OverflowError):
        return False
    return True


def _process_start(pid: int) -> str | None:
    """When the process ``pid`` started (``/proc/<pid>/stat``'s clock ticks since boot, with
    this boot's id), or None where it is not running (gone, or killed and not yet reaped) or the
    system does not say."""
    try:
        state, *fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        boot = (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except (OSError, IndexError, ValueError):
        return None
    return None if state in ("Z", "X") or len(fields) < 20 else f"{boot}:{fields[18]}"


def with_unrecorded(stop: dict[str, Any], recorded: Iterable[str]) -> dict[str, Any]:
    """``stop`` with the cells its session selected (``running.json``'s ``selected``) that have
    no record among ``recorded`` as ``unrecorded``: what a killed run never finished, those that
    skipped included (a skipped cell writes no record either)."""
    if "selected" not in stop:
        return stop
    kept = set(recorded)
    out = {key: value for key, value in stop.items() if key != "selected"}
    if unrecorded := [name for name in stop["selected"] if name not in kept]:
        out["unrecorded"] = unrecorded
    return out


def merged_stops(runs: list[Path]) -> dict[str, Any] | None:
    """The stops of several runs merged into one report: each named by its run, the counts
    summed where every stopped run has them (shards select disjoint cells)."""
    stops = {Path(run).name: stop for run in runs if (stop := read_stopped(run)) is not None}
    if not stops:
        return None
    merged: dict[str, Any] = {"reason": "; ".join(f"{run}: {stop['reason']}"
                                                  for run, stop in stops.items())}
    for key in ("tests_finished", "tests_selected"):
        if all(key in stop for stop in stops.values()):
            merged[key] = sum(stop[key] for stop in stops.values())
    if all("unfinished" in stop for stop in stops.values()):
        merged["unfinished"] = [name for stop in stops.values() for name in stop["unfinished"]]
    return merged


def stopped_sentence(stop: dict[str, Any], n_cells: int) -> str:
    """What a report says above its tables of a run that stopped early (or is still running)."""
    recorded = f"{n_cells} cell{'' if n_cells == 1 else 's'} recorded"
    if stop.get("running"):
        selected = (f", of its {stop['tests_selected']} selected tests"
                    if "tests_selected" in stop else "")
        return (f"This run had not ended when this report was built ({stop['reason']}): the "
                f"tables hold the {recorded} by then{selected}. Build the report again once it "
                "ends.")
    if "tests_finished" in stop:
        counted = (f"{stop['tests_finished']} of its {stop['tests_selected']} selected tests "
                   "finished, and ")
    elif "tests_selected" in stop:
        counted = f"{stop['tests_selected']} tests were selected, and "
    else:
        counted = ""
    return (f"This run stopped before every selected cell ran ({stop['reason']}): {counted}"
            f"the tables hold only the {recorded} by then{_not_finished(stop)}. The same command "
            "run again runs them all, the model calls already made read from the generation "
            "cache.")


SHOWN_UNFINISHED = 5  # the cells that never finished named in the sentence; stopped.json has all


def _not_finished(stop: dict[str, Any]) -> str:
    """``; not finished: a, b and 3 more (stopped.json lists them)``; for a killed run, the
    selected cells with no record (``; no record of: ...``); or ""."""
    if names := stop.get("unfinished") or []:
        said, where, caveat = "not finished", f"{STOPPED_FILE} lists them", ""
    elif names := stop.get("unrecorded") or []:
        said, where = "no record of", f"{RUNNING_FILE} lists every selected one"
        caveat = "a cell that skipped has none either"
    else:
        return ""
    more = len(names) - SHOWN_UNFINISHED
    notes = "; ".join(note for note in (where if more > 0 else "", caveat) if note)
    return (f"; {said}: {', '.join(names[:SHOWN_UNFINISHED])}"
            + (f" and {more} more" if more > 0 else "") + (f" ({notes})" if notes else ""))
