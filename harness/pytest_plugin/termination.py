"""SIGTERM taken as Ctrl-C in a grid's processes: a cluster job's time limit, ``timeout`` or
``kill`` then ends a run as Ctrl-C does (the cells recorded kept, ``stopped.json`` written, the
report built and saying so), where Python's default would end the process on the spot, leaving
no report (only ``running.json``: :mod:`harness.report.stopped`)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

TERMINATED = pytest.StashKey[bool]()  # this process was sent SIGTERM


def stop_on_sigterm(config: pytest.Config) -> None:
    """From now on in this process, the first SIGTERM raises KeyboardInterrupt and the ones after
    it do nothing, so that the stop they started ends writing its report (``timeout`` sends two
    at once, to the process and to its group; SIGKILL still ends the process at once, as a
    job's time limit does after its grace period). Only where SIGTERM has its default action
    (nothing else handles it) and only from the main thread, which alone may set a handler.
    Undone when the session's configuration is (a pytest run in process, as pytester's, leaves
    none)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        if not config.stash.get(TERMINATED, False):
            config.stash[TERMINATED] = True
            raise KeyboardInterrupt("SIGTERM")

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, on_sigterm)
    config.add_cleanup(undo)


def terminated(config: pytest.Config) -> bool:
    """Whether this process was sent SIGTERM while :func:`stop_on_sigterm`'s handler held."""
    return config.stash.get(TERMINATED, False)


class SigtermOnceCellsRun:
    """xdist's controller collects nothing: it takes SIGTERM as Ctrl-C once a grid cell has
    reported (each worker took it on when it collected the grid)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.taken = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.taken and "cell" in report.keywords:
            self.taken = True
            stop_on_sigterm(self.config)
