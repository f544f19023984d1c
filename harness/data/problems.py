"""The project's data error type and the problems a loader records instead of crashing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DataError(Exception):
    """A corpus file or clip that cannot be used, naming the file (and line, when there is one).

    Loaders raise it only for problems that make the whole corpus unusable (a missing label
    file, a CSV without a required column); item-level problems become :class:`Problem` records.
    """

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}")


class AudioError(DataError):
    """A clip that is missing, unreadable, empty or not finite."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a corpus, found while loading it.

    Attributes:
        path: The file the problem is in.
        line: 1-based line number, or None when the problem concerns a whole file.
        message: What is wrong, in words.
        severity: ``"error"`` when data was dropped because of it, ``"warning"`` otherwise.
    """

    path: str
    line: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{self.severity}: {where}: {self.message}"


class ProblemLog(list):
    """A list of :class:`Problem` with shorthand for recording one."""

    def error(self, path: str | Path, line: int | None, message: str) -> None:
        self.append(Problem(str(path), line, message, "error"))

    def warning(self, path: str | Path, line: int | None, message: str) -> None:
        self.append(Problem(str(path), line, message, "warning"))
