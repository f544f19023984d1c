"""Reading label files as real releases ship them: BOMs, CRLF, stray non-UTF-8 bytes, bad paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.data.problems import DataError, ProblemLog


def read_lines(path: Path, problems: ProblemLog) -> list[str]:
    """A text file's lines, without line endings or a leading BOM.

    Bytes that are not UTF-8 are replaced (and recorded as a warning) instead of failing.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.warning(path, raw[: exc.start].count(b"\n") + 1, "bytes that are not UTF-8")
        text = raw.decode("utf-8", errors="replace")
    return text.lstrip("\ufeff").splitlines()


def read_csv(path: Path, required: list[str], problems: ProblemLog, **kwargs) -> pd.DataFrame:
    """A CSV file as strings, checking that ``required`` columns are present.

    Raises:
        DataError: the file is missing, cannot be parsed, or lacks a required column (line 1).
    """
    if not path.is_file():
        raise DataError(path, "label file not found")
    lines = read_lines(path, problems)
    from io import StringIO

    try:
        frame = pd.read_csv(
            StringIO("\n".join(lines)), dtype=str, keep_default_na=False, **kwargs
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(path, f"not a readable CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {missing}; found {list(frame.columns)}", line=1)
    return frame


def inside(root: Path, relative: str, path_for_errors: Path, line: int | None) -> Path:
    """``root / relative``, refusing a name that would leave the corpus root.

    Raises:
        DataError: ``relative`` is absolute or climbs out of ``root`` (``../../etc/passwd``).
    """
    candidate = (root / relative).resolve()
    if Path(relative).is_absolute() or not candidate.is_relative_to(root.resolve()):
        raise DataError(path_for_errors, f"path {relative!r} leaves the corpus root", line)
    return root / relative
