"""Reading label files as real releases ship them: BOMs, CRLF, stray non-UTF-8 bytes, bad paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness._regular import not_a_regular_file
from harness.data.problems import DataError, ProblemLog

if TYPE_CHECKING:
    import pandas as pd


def read_bytes(path: Path, what: str = "label file") -> bytes:
    """A file's bytes, or a DataError naming it (not found, not a regular file, unreadable)."""
    why = not_a_regular_file(path)
    if why is not None:
        raise DataError(path, f"{what} {why}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"{what} cannot be read: {exc.strerror or exc}") from None


def read_lines(path: Path, problems: ProblemLog, what: str = "label file") -> list[str]:
    """A text file's lines, without line endings or a leading BOM.

    Bytes that are not UTF-8 are replaced (and recorded as a warning) instead of failing.

    Raises:
        DataError: the file is missing, not a regular file, or cannot be read.
    """
    return read_text(path, problems, what).splitlines()


def read_text(path: Path, problems: ProblemLog, what: str = "label file") -> str:
    """A text file's text without a leading BOM (see :func:`read_lines`; ``what`` names the
    file in an error: ``"label file"``, ``"transcript"``)."""
    raw = read_bytes(path, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.warning(path, raw[: exc.start].count(b"\n") + 1, "bytes that are not UTF-8")
        text = raw.decode("utf-8", errors="replace")
    return text.lstrip("\ufeff")


def read_csv(path: Path, required: list[str], problems: ProblemLog, **kwargs) -> pd.DataFrame:
    """A CSV file as strings, checking that ``required`` columns are present.

    Raises:
        DataError: the file is missing, cannot be parsed, or lacks a required column (line 1).
    """
    return parse_csv(read_text(path, problems), path, required, **kwargs)


def parse_csv(text: str, path: Path, required: list[str], **kwargs) -> pd.DataFrame:
    """:func:`read_csv` of a file's text already read (``path`` names it in errors)."""
    from io import BytesIO

    import pandas as pd  # here, not at the top: a run on IEMOCAP alone never needs it

    # the text itself, not its lines joined again, and as UTF-8 bytes: a StringIO holds four
    # bytes a character (33 MiB for a 120,000-row labels_detailed.csv of 8.2 MiB)
    try:
        frame = pd.read_csv(BytesIO(text.encode("utf-8")), dtype=str, keep_default_na=False,
                            encoding="utf-8", **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(path, f"not a readable CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(frame.columns)}", line=1)
    return frame


def inside(root: Path, relative: str, path_for_errors: Path, line: int | None) -> Path:
    """``root / relative``, refusing a name that would leave the corpus root.

    The name is judged as written (a label file's name is what cannot be trusted): absolute, or
    climbing out with ``..`` once normalised, it is refused. Links inside the root are the
    corpus owner's and are followed when the clip is read, so an ``Audios/`` linked to another
    disk, or clips that are links into a download cache, load as they are.

    Raises:
        DataError: ``relative`` is absolute or climbs out of ``root`` (``../../etc/passwd``), or
            holds a NUL byte (no file can have that name).
    """
    if "\0" in relative:  # no file can have that name; the OS would raise ValueError on it
        raise DataError(path_for_errors, f"path {relative!r} holds a NUL byte", line)
    first = os.path.normpath(relative).split(os.sep, 1)[0]
    if os.path.isabs(relative) or first == os.pardir:
        raise DataError(path_for_errors, f"path {relative!r} leaves the corpus root", line)
    return root / relative
