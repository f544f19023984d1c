"""``python -m harness.data check <corpus> [root]``: what a corpus holds and what is wrong with it."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness._regular import not_a_regular_file
from harness._values import typed
from harness.data.dataset import Dataset, Item
from harness.data.loader import CORPORA, load_dataset
from harness.data.problems import DataError, Problem
from harness.metrics import entropy_bins, level_name


@dataclass(frozen=True)
class ClipProblem(Problem):
    """A clip's problem, with its kind ("audio file missing", "unreadable", ...) kept apart from
    the message: an id or a reason with ': ' in it never changes how clips are counted."""

    kind: str = ""


def audio_problems(dataset: Dataset) -> list[ClipProblem]:
    """Clips that are missing or whose header cannot be read (soundfile.info, no decoding)."""
    import soundfile as sf

    found = []

    def add(item: Item, kind: str, detail: str = "") -> None:
        found.append(ClipProblem(str(item.audio_path), None, f"{item.id}: {kind}{detail}",
                                 kind=kind))

    for item in dataset:
        why = not_a_regular_file(item.audio_path)  # a FIFO is never opened: it would block
        if why is not None:
            add(item, "audio file missing" if why == "not found" else why)
            continue
        try:
            info = sf.info(str(item.audio_path))
        except Exception as exc:
            add(item, "unreadable", f": {exc}")
            continue
        if info.frames == 0:
            add(item, "no samples")
    return found


def summary_lines(dataset: Dataset, n_bins: int = 5) -> list[str]:
    """Item count, class distribution and entropy histogram as printable lines."""
    lines = [f"{dataset.name}: {dataset.root}", f"items: {len(dataset)}"]
    lines += [f"  skipped {count}: {reason}" for reason, count in sorted(dataset.skipped.items())]
    if not len(dataset):
        return lines
    majority = [item.majority for item in dataset]
    mass = dataset.soft.sum(axis=0)
    lines.append(f"{'class':<16}{'majority':>9}{'soft mass':>11}")
    for label, m in zip(dataset.labels, mass):
        lines.append(f"  {label:<14}{majority.count(label):>9}{m:>11.1f}")
    lines.append(f"  {'(tied)':<14}{majority.count(None):>9}")
    h = np.array([item.entropy for item in dataset])
    index, edges = entropy_bins(h, n_bins)
    counts = np.bincount(index, minlength=n_bins)
    lines.append(f"entropy (bits), {n_bins} equal-width bins, median {np.median(h):.3f}:")
    for b, count in enumerate(counts):
        bar = "#" * int(round(40 * count / max(counts.max(), 1)))
        lines.append(f"  {level_name(b)} [{edges[b]:.2f}, {edges[b + 1]:.2f}"
                     f"{']' if b == n_bins - 1 else ')'} {count:>6} {bar}".rstrip())
    return lines


def _options(args: argparse.Namespace) -> dict:
    options: dict = {}
    if args.merge_excited:
        options["merge_excited"] = True
    if args.vote_mode:
        options["vote_mode"] = args.vote_mode
    if args.split:
        options["split"] = args.split
    for text in args.option:
        name, equals, raw = text.partition("=")
        if not (equals and name):
            raise ValueError(f"--option {text!r}: expected NAME=VALUE")
        options[name] = typed(raw)
    return options


def _import_corpora(argv: Sequence[str] | None) -> None:
    """The modules named by ``--import``, imported first: a corpus of one's own registers there
    (:func:`harness.data.register_corpus`), before its name is checked; ``python -m`` looks
    for them in the working folder first. A name ending in ``.py`` is a file (a
    ``conftest.py``), run as a module; what it imports is looked for as for a module named."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--import", dest="modules", action="append", default=[])
    for module in early.parse_known_args(argv)[0].modules:
        if not module.endswith(".py"):
            importlib.import_module(module)
            continue
        path = Path(module).resolve()
        if not path.is_file():
            raise ImportError(f"{module}: no such file")
        spec = importlib.util.spec_from_file_location(f"_imported_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        _import_corpora(argv)
    except ImportError as exc:
        print(f"error: --import: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the module's own error: said with where, not a traceback
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"error: --import: {type(exc).__name__}: {exc} (raised at {where.filename}:"
              f"{where.lineno})", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m harness.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="summarise a corpus and list every problem found")
    check.add_argument("corpus", choices=sorted(CORPORA))
    check.add_argument("root", nargs="?", help="corpus root (default: env variable or fixture)")
    check.add_argument("--no-audio", action="store_true", help="skip the audio file checks")
    check.add_argument("--all", action="store_true",
                       help=f"list every clip problem (else the first {SHOWN} of each kind)")
    check.add_argument("--merge-excited", action="store_true", help="IEMOCAP: Excited->Happiness")
    check.add_argument("--vote-mode", choices=["per-category", "split"], help="IEMOCAP votes")
    check.add_argument("--split", help="MSP-Podcast Split_Set to keep")
    check.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                       help="any corpus option (JSON values; repeatable), e.g. sessions=[1,2]")
    check.add_argument("--import", dest="modules", action="append", default=[], metavar="MODULE",
                       help="a module (or a .py file, such as a conftest.py) that registers a "
                            "corpus of one's own (register_corpus)")
    args = parser.parse_args(argv)
    try:
        dataset = load_dataset(args.corpus, args.root, **_options(args))
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(dataset)))
    clips = [] if args.no_audio else audio_problems(dataset)
    problems = [*dataset.problems, *clips]
    print(f"problems: {len(problems)}")
    for problem in dataset.problems:
        print(f"  {problem}")
    for line in _clip_problem_lines(dataset, clips, every=args.all):
        print(f"  {line}")
    return 1 if any(p.severity == "error" for p in problems) else 0


SHOWN = 10  # clips named for each kind of clip problem without --all


def _clip_problem_lines(dataset: Dataset, clips: list[ClipProblem], every: bool) -> list[str]:
    """Each clip problem, or the first few of each kind and how many more: a copy without its
    audio would list every clip; where none is there, what to look at."""
    kinds: dict[str, list[ClipProblem]] = {}
    for problem in clips:
        kinds.setdefault(problem.kind, []).append(problem)
    lines = []
    for kind, found in kinds.items():
        lines += [str(p) for p in (found if every else found[:SHOWN])]
        if len(found) > SHOWN and not every:
            lines.append(f"... and {len(found) - SHOWN:,} more clips: {kind} (--all lists every one)")
    missing = len(kinds.get("audio file missing", ()))
    if missing and missing == len(dataset):
        folders = sorted({str(Path(p.path).parent) for p in kinds["audio file missing"]})
        lines.append(f"none of the {missing:,} clips is there (looked for in "
                     f"{', '.join(folders[:3])}{', ...' if len(folders) > 3 else ''}): is the "
                     "audio elsewhere? --no-audio checks the labels alone")
    return lines
