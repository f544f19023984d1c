"""What the controller says: the workers' progress as it arrives, and at the end the cells without
a snapshot, the gate's verdicts on model updates, the baselines written and the report's path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROPERTIES = ("harness_snapshot", "harness_gate", "harness_baseline", "harness_gated")


class LogFollower:
    """Follows ``<run>/logs/<worker>.log`` files and hands each new complete line to ``write`` as
    ``[gw0] <line>``, from a background thread polling every ``interval`` seconds."""

    def __init__(self, folder: Path, write: Callable[[str], None], interval: float = 1.0) -> None:
        self.folder, self.write, self.interval = Path(folder), write, interval
        self._offsets: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-progress", daemon=True)

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()  # what arrived since the last poll

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        for log in sorted(self.folder.glob("*.log")) if self.folder.is_dir() else []:
            start = self._offsets.get(log, 0)
            try:
                with open(log, "rb") as f:
                    f.seek(start)
                    chunk = f.read()
            except OSError:
                continue
            complete = chunk[:chunk.rfind(b"\n") + 1]
            self._offsets[log] = start + len(complete)
            for line in complete.decode(errors="replace").splitlines():
                self.write(f"[{log.stem}] {line}")


def own_line(reporter: Any, line: str) -> None:
    """``line`` on a terminal line of its own: pytest may be midway through a line of test
    dots (or past ``[100%]``), which ``write_line`` alone would append it to."""
    if getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0):  # pytest's own writer
        reporter.write("\n")
    reporter.write_line(line)


def regression_findings(stats: dict[str, list[Any]]) -> dict[str, list[tuple[str, str]]]:
    """The harness's user properties of every test report, by property name."""
    found: dict[str, list[tuple[str, str]]] = {}
    for reports in stats.values():
        for report in reports:
            if getattr(report, "when", None) not in ("call", "teardown"):
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name in PROPERTIES:
                    found.setdefault(name, []).append((report.nodeid, str(value)))
    return found


def summary_lines(found: dict[str, list[tuple[str, str]]]) -> list[tuple[str, dict[str, bool]]]:
    """Lines (with their terminal markup) for what the gate and the snapshots found."""
    from harness.runner.snapshots import NONE, PREDATES

    out: list[tuple[str, dict[str, bool]]] = []
    snapped = found.get("harness_snapshot", [])
    unsnapped = sorted({n.rsplit("[", 1)[-1].rstrip("]") for n, v in snapped if v == NONE})
    if unsnapped:
        more = f" and {len(unsnapped) - 6} more" if len(unsnapped) > 6 else ""
        have = "has" if len(unsnapped) == 1 else "have"
        out.append((f"harness: {_count(len(unsnapped), 'cell')} {have} no snapshot for this "
                    "configuration (not a failure; --snapshot-update records them): "
                    f"{', '.join(unsnapped[:6])}{more}", {"yellow": True}))
    older = [v.removeprefix(PREDATES) for _, v in snapped if v.startswith(PREDATES)]
    if older:
        out.append((f"harness: {_count(len(older), 'cell')} matched snapshots recorded before "
                    f"this harness computed {', '.join(sorted(set(', '.join(older).split(', '))))} (compared "
                    "without them; --snapshot-update adds them)", {"yellow": True}))
    verdicts = sorted({v for _, v in found.get("harness_gate", [])})
    out += [(f"harness gate: {summary}", {}) for summary in verdicts]
    # a cell's once: its call's and its teardown's reports both carry what the call added
    if chance := gate_by_chance(list(dict(found.get("harness_gated", [])).values())):
        out.append((chance, {}))
    written = sorted({v for _, v in found.get("harness_baseline", [])})
    if written:
        folders = ", ".join(sorted({str(Path(v).parent) for v in written}))
        out.append((f"harness: recorded {_count(len(written), 'baseline')} in {folders} and "
                    "their cells' snapshots (in snapshots/ beside them)", {}))
    return out


def gated_property(verdict: Any, alpha: float) -> str:
    """``0.05 1 0``: a gated cell's ``--gate-alpha``, whether any of its items' scores moved
    and whether a metric came out worse (:func:`gate_by_chance` reads them)."""
    moved = any(change.items_changed for change in verdict.changes)
    worse = any(change.verdict == "worse" for change in verdict.changes)
    return f"{alpha!r} {int(moved)} {int(worse)}"


def gate_by_chance(gated: list[str]) -> str:
    """``harness gate: 3 of 189 cells whose scores moved came out worse; had the changes ...``:
    each cell is held to ``--gate-alpha`` alone, so over many whose scores moved (a model or
    prompt update) some fail by chance; "" where chance would fail fewer than one in two runs."""
    from harness.runner.gating import by_chance

    moved = [value.split() for value in gated if value.split()[1:2] == ["1"]]
    alphas = {float(fields[0]) for fields in moved}
    if len(alphas) != 1:
        return ""
    note = by_chance(len(moved), alphas.pop(), "fail",
                     "had the changes moved nothing systematically")
    worse = sum(fields[2:3] == ["1"] for fields in moved)
    return (f"harness gate: {worse} of {len(moved)} cells whose scores moved came out worse; "
            f"{note}" if note else "")


def _count(n: int, noun: str) -> str:
    """``1 cell``, ``8 cells``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
