"""Files that are what they claim: a path is read only once ``stat`` says it is a regular file,
and opened so that a FIFO put there a moment later is refused instead of blocking the reader
for ever (the corpus readers, the record readers, the checkpoint loaders)."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str | None:
    """What a ``stat`` mode says is there (``a FIFO``), or None for a kind not named."""
    return next((name for test, name in _KINDS if test(mode)), None)


def _mode(path: str | os.PathLike[str], missing: str) -> int | str:
    """``path``'s ``stat`` mode, or why there is none (``missing`` where nothing is there)."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return missing
    except OSError as exc:
        return f"cannot be examined ({exc.strerror or type(exc).__name__})"


def not_a_regular_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as a file (found by ``stat``, never by opening it: a FIFO
    would block the reader forever), or None for a regular file."""
    mode = _mode(path, "not found")
    if isinstance(mode, str) or stat.S_ISREG(mode):
        return mode if isinstance(mode, str) else None
    kind = _kind(mode)
    return f"is {kind}, not a regular file" if kind else "not a regular file"


def not_a_folder(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is no folder, by ``stat`` alone: ``no such folder``, or what is there
    instead (``is a regular file, not a folder``); None for a folder or a link to one."""
    mode = _mode(path, "no such folder")
    if isinstance(mode, str) or stat.S_ISDIR(mode):
        return mode if isinstance(mode, str) else None
    kind = _kind(mode)
    return f"is {kind}, not a folder" if kind else "not a folder"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary, once it is known to be a regular file: opened
    without waiting and checked on its descriptor, so that a FIFO put where a regular file was
    found a moment before is refused (OSError) instead of blocking the reader."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fspath(path)} is not a regular file")
        return open(fd, "rb")  # noqa: SIM115 (the caller closes it)
    except BaseException:
        os.close(fd)
        raise


def refused_kind(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is refused before it is opened: it is there but no regular file (``is a
    FIFO, not a regular file``); None for a regular file or a missing one, whose opening gives
    the system's own error."""
    why = not_a_regular_file(path)
    return None if why == "not found" else why


def irregular_entries(path: str | os.PathLike[str]) -> list[str]:
    """What in ``path`` a reader would wait on or misread, found by ``stat`` alone: for a folder,
    each entry that is neither a regular file nor a folder (``config.json is a FIFO, not a regular
    file``); for a file, its name if it is no regular file. Empty when all is well or ``path`` is
    missing (its reader's own error says so)."""
    if os.path.isdir(path):
        found = []
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            why = None if entry.is_dir() else refused_kind(entry.path)
            if why is not None:
                found.append(f"{entry.name} {why}")
        return found
    why = refused_kind(path)
    return [f"{os.path.basename(path)} {why}"] if why is not None else []


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file at ``path``, never waiting on a FIFO.

    Raises:
        OSError: the file is missing or unreadable (the system's error), or is no regular file
            (its message the kind: ``is a FIFO, not a regular file``).
    """
    why = refused_kind(path)
    if why is not None:
        raise OSError(why)
    with open_regular(path) as f:
        return f.read()
