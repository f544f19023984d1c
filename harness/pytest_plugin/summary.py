"""What the controller says: the workers' progress as it arrives, and at the end the cells without
a snapshot, the gate's verdicts on model updates, the baselines written and the report's path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROPERTIES = ("harness_snapshot", "harness_gate", "harness_baseline")


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
    written = sorted({v for _, v in found.get("harness_baseline", [])})
    if written:
        folders = ", ".join(sorted({str(Path(v).parent) for v in written}))
        out.append((f"harness: recorded {_count(len(written), 'baseline')} in {folders} and "
                    "their cells' snapshots (in snapshots/ beside them)", {}))
    return out


def _count(n: int, noun: str) -> str:
    """``1 cell``, ``8 cells``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
