"""``load_dataset``: the corpus name, its root (argument, environment variable, or bundled fixture)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness.data.crema_d as crema_d
import harness.data.iemocap as iemocap
import harness.data.msp_podcast as msp_podcast
from harness._embedded import embedded_path
from harness._regular import not_a_folder
from harness.data._reader_output import checked_output
from harness.data.dataset import Dataset
from harness.data.options import Checker, check_options
from harness.data.problems import DataError, ProblemLog
from harness.prompts import CorpusWording, add_wording

Reader = Callable[..., tuple[Any, Any, Any]]  # (root, problems, **options) -> labels, items, skipped


@dataclass(frozen=True)
class Corpus:
    """How to find and read one corpus."""

    name: str
    env_var: str
    fixture: tuple[str, ...] | None  # its bundled copy, under harness/embedded/ (None: none)
    reader: Any
    options: Mapping[str, Checker]  # the reader's keyword options, each with its value's check


CORPORA = {
    "iemocap": Corpus("iemocap", "IEMOCAP_ROOT", ("iemocap", "IEMOCAP_full_release"),
                      iemocap.load, iemocap.OPTIONS),
    "msp_podcast": Corpus("msp_podcast", "MSP_PODCAST_ROOT", ("msp_podcast",),
                          msp_podcast.load, msp_podcast.OPTIONS),
    "crema_d": Corpus("crema_d", "CREMA_D_ROOT", ("crema_d",), crema_d.load, crema_d.OPTIONS),
}
BUILT_IN = tuple(CORPORA)
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register_corpus(name: str, reader: Reader, *, env_var: str, wording: CorpusWording,
                    options: Mapping[str, Checker] | None = None) -> Corpus:
    """Make a corpus of one's own loadable by name (``load_dataset``, a grid's ``datasets``):
    ``reader(root, problems, **options) -> (labels, items, skipped)`` reads the folder that
    ``root`` or the variable ``env_var`` names; ``wording`` is its prompts' background and what
    the distribution is predicted for; ``options`` maps each keyword option to its checker
    (:mod:`harness.data.options`).

    Raises:
        ValueError: a name that is not lower-case letters, digits and ``_`` (it goes into cell
            ids and file names), or a built-in corpus's.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"corpus name {name!r}: use lower-case letters, digits and _ "
                         "(it is part of each cell's id and file names)")
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in corpus; register yours under another name")
    CORPORA[name] = Corpus(name, env_var, None, reader, dict(options or {}))
    add_wording(name, wording)
    return CORPORA[name]


def resolve_root(name: str, root: str | os.PathLike | None = None) -> Path:
    """The root to read: ``root``, else the corpus's environment variable, else the fixture."""
    corpus = _corpus(name)
    if root is not None:
        return Path(root).expanduser()
    from_env = os.environ.get(corpus.env_var)
    if from_env:  # "~/IEMOCAP" in quotes (a .env file) reaches here unexpanded
        return Path(from_env).expanduser()
    if corpus.fixture is None:
        raise DataError(f"${corpus.env_var}", f"not set, and {name} has no bundled copy")
    return embedded_path(*corpus.fixture)


def load_dataset(name: str, root: str | os.PathLike | None = None, **options: Any) -> Dataset:
    """Load a corpus as a :class:`Dataset`.

    Args:
        name: ``"iemocap"``, ``"msp_podcast"`` or ``"crema_d"``.
        root: The corpus folder. None means the environment variable (``IEMOCAP_ROOT``,
            ``MSP_PODCAST_ROOT``, ``CREMA_D_ROOT``) or, when unset, the bundled fixture copy.
        **options: Corpus options: IEMOCAP ``merge_excited``, ``vote_mode``, ``sessions``;
            MSP-Podcast ``split``, ``include_no_consensus``; CREMA-D ``votes_file``.

    Raises:
        DataError: the root is missing or is not a release of that corpus, or a file the whole
            corpus needs (a label table) cannot be read; a file one dialog or item needs becomes
            a recorded problem instead.
        ValueError: an unknown corpus name or option value.
    """
    corpus = _corpus(name)
    options = check_options(name, options, corpus.options)
    path = resolve_root(name, root)
    why = not_a_folder(path)
    if why is not None:
        what = "folder not found" if why == "no such folder" else why
        raise DataError(path, f"{name} root {what} (set {corpus.env_var})")
    problems = ProblemLog()
    try:
        output = corpus.reader(path, problems, **options)
    except OSError as exc:  # a folder or file the readers could not open or list
        raise DataError(exc.filename or path, f"cannot be read: {exc.strerror or exc}") from None
    labels, items, skipped = checked_output(name, path, output, problems)
    return Dataset(name, labels, items, path, options, problems, skipped)


def option_names(name: str) -> tuple[str, ...]:
    """The loader options a corpus takes."""
    return tuple(_corpus(name).options)


def checked_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for corpus ``name`` in their checked form (see :mod:`harness.data.options`).

    Raises:
        ValueError: an unknown corpus; OptionError (a ValueError): an unknown option or a value
            it does not take.
    """
    return check_options(name, options, _corpus(name).options)


def _corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose from {sorted(CORPORA)}")
    return CORPORA[name]
