"""A local checkpoint's files that cannot be read, named: a shard or a tokenizer cut short by a
copy, a JSON file that does not parse, or a FIFO where a file should be (refused before anything
opens it: a reader would wait for a writer for ever)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from harness import _json
from harness._regular import irregular_entries, read_regular


@contextlib.contextmanager
def unreadable_files_named(name: str, path, what: str) -> Iterator[None]:
    """Files of the checkpoint folder ``path`` that cannot be read (a shard or a tokenizer cut
    short by a copy) raise ModelNotLoaded naming the folder and the JSON files in it that do not
    parse, which the readers' own messages do not name (not another ValueError: an argument's;
    a RecursionError is a JSON file nested too deeply for Python's reader).
    ``what``: what was being read, the weights or the processor."""
    from harness.models.api import ModelNotLoaded

    refuse_irregular_files(name, path)
    try:
        yield
    except (OSError, json.JSONDecodeError, RecursionError) + _reader_errors() as exc:
        broken = _unparsed_json(Path(path))
        which = f"; {', '.join(broken)} {'is' if len(broken) == 1 else 'are'} not JSON" if broken else ""
        raise ModelNotLoaded(f"{name}: the {what} in {path} could not be read "
                             f"({type(exc).__name__}: {str(exc)[:300]}{which}); copy them again"
                             ) from exc


def refuse_irregular_files(name: str, path) -> None:
    """ModelNotLoaded naming what in the checkpoint at ``path`` is no regular file (a FIFO where
    a processor config should be would block its reader for ever)."""
    from harness.models.api import ModelNotLoaded

    found = irregular_entries(path)
    if found:
        raise ModelNotLoaded(f"{name}: the checkpoint in {path} cannot be read: {'; '.join(found)}")


def _unparsed_json(folder: Path) -> list[str]:
    """The folder's ``*.json`` files that do not parse (read only once something failed)."""
    broken = []
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            _json.loads(read_regular(file))
        except (OSError, ValueError):
            broken.append(file.name)
    return broken


def _reader_errors() -> tuple[type[Exception], ...]:
    """safetensors' error for a damaged file (it is no OSError), where safetensors is installed."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return ()
    return (SafetensorError,)
