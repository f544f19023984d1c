"""IEMOCAP (``IEMOCAP_full_release/``): EmoEvaluation blocks, external raters' votes.

Layout read::

    SessionN/sentences/wav/<dialog>/<utt>.wav
    SessionN/dialog/EmoEvaluation/<dialog>.txt      (subfolders Categorical/ etc. are skipped)
    SessionN/dialog/transcriptions/<dialog>.txt
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.data._files import inside, read_lines
from harness.data.dataset import Item
from harness.data.options import flag, one_of, whole_numbers
from harness.data.problems import DataError, ProblemLog

LABELS = ("Neutral state", "Happiness", "Anger", "Sadness")
CONSENSUS = {"neu": "Neutral state", "hap": "Happiness", "ang": "Anger", "sad": "Sadness"}
RATER_CATEGORIES = {
    "neutral": "Neutral state", "neutral state": "Neutral state", "happiness": "Happiness",
    "excited": "Excited", "anger": "Anger", "sadness": "Sadness", "frustration": "Frustration",
    "surprise": "Surprise", "fear": "Fear", "disgust": "Disgust", "other": "Other",
}  # fmt: skip
VOTE_MODES = ("per-category", "split")
OPTIONS = {"merge_excited": flag, "vote_mode": one_of(VOTE_MODES), "sessions": whole_numbers}

_HEADER = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]\s*$"
)
_RATER = re.compile(r"^([A-Z])-([A-Z]+\d*)\s*:\s*(.*)$")
_TRANSCRIPT = re.compile(r"^(Ses\S+)\s+\[[^\]]*\]:\s?(.*)$")


@dataclass
class _Block:
    """One utterance's block in an EmoEvaluation file, before it becomes an Item."""

    utt: str
    consensus: str
    line: int
    start: float
    end: float
    raters: list[tuple[str, list[str]]] = field(default_factory=list)


def load(root: Path, problems: ProblemLog, *, merge_excited: bool = False,
         vote_mode: str = "per-category", sessions=None) -> tuple[tuple[str, ...], list[Item], Counter]:
    """Read the corpus under ``root`` (the ``IEMOCAP_full_release`` folder or its parent).

    Args:
        merge_excited: Count ``Excited`` votes as Happiness and keep ``exc`` consensus items.
        vote_mode: ``"per-category"`` gives each category a rater lists one vote;
            ``"split"`` splits the rater's single vote evenly over the categories listed.
        sessions: Session numbers to read (default: every ``SessionN`` folder present).
    """
    if vote_mode not in VOTE_MODES:
        raise ValueError(f"vote_mode must be one of {VOTE_MODES}, not {vote_mode!r}")
    if (root / "IEMOCAP_full_release").is_dir():
        root = root / "IEMOCAP_full_release"
    session_dirs = sorted(p for p in root.glob("Session*") if p.is_dir())
    if not session_dirs:
        raise DataError(root, "no SessionN folders: not an IEMOCAP_full_release root")
    if sessions is not None:
        wanted = {f"Session{int(s)}" for s in sessions}
        found = ", ".join(p.name for p in session_dirs)
        session_dirs = [p for p in session_dirs if p.name in wanted]
        if not session_dirs:
            raise DataError(root, f"the sessions option selects {', '.join(sorted(wanted))}, none "
                                  f"of them here (it has {found})")
    items: list[Item] = []
    skipped: Counter = Counter()
    seen: set[str] = set()
    for session in session_dirs:
        for eval_file in _label_files(session / "dialog" / "EmoEvaluation"):
            transcripts = _read_transcripts(
                session / "dialog" / "transcriptions" / eval_file.name, problems
            )
            for block in _read_blocks(eval_file, problems):
                item = _to_item(block, session, eval_file, transcripts, seen, skipped,
                                problems, merge_excited=merge_excited, vote_mode=vote_mode)
                if item is not None:
                    items.append(item)
    return LABELS, items, skipped


def _label_files(folder: Path) -> list[Path]:
    """The dialog files of one session, without macOS ``._`` files or the subfolders (a FIFO or
    a dangling link is kept, for its reader to name as a problem, not left out unsaid)."""
    return sorted(
        p for p in folder.glob("*.txt") if not p.is_dir() and not p.name.startswith("._")
    )


def _read_blocks(path: Path, problems: ProblemLog) -> list[_Block]:
    """Parse an EmoEvaluation file into blocks; malformed lines become problems, and a file that
    cannot be read is one (its dialog's items are left out)."""
    blocks: list[_Block] = []
    current: _Block | None = None
    skipping = False
    try:
        lines = read_lines(path, problems)
    except DataError as exc:
        problems.error(path, None, f"{exc.reason}: its dialog's items are left out")
        return []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            current, skipping = None, False
            continue
        if text.startswith("%"):
            continue
        if text.startswith("["):
            current, skipping = _parse_header(text, path, number, problems), False
            if current is None:
                skipping = True
            else:
                blocks.append(current)
            continue
        if skipping:
            continue
        if current is None:
            problems.error(path, number, f"line outside an utterance block: {text[:60]!r}")
            continue
        _add_rater_line(current, text, path, number, problems)
    return blocks


def _parse_header(text: str, path: Path, number: int, problems: ProblemLog) -> _Block | None:
    match = _HEADER.match(text)
    if match is None:
        problems.error(path, number, f"malformed utterance header, block skipped: {text[:80]!r}")
        return None
    start, end, utt, code, _vad = match.groups()
    try:
        return _Block(utt, code.lower(), number, float(start), float(end))
    except ValueError:
        problems.error(path, number, f"bad times in utterance header: {text[:80]!r}")
        return None


def _add_rater_line(block: _Block, text: str, path: Path, number: int,
                    problems: ProblemLog) -> None:
    match = _RATER.match(text)
    if match is None:
        problems.error(path, number, f"unrecognised line in block {block.utt}: {text[:60]!r}")
        return
    kind, rater, rest = match.groups()
    if kind != "C" or not rater.startswith("E"):
        return  # A- lines are dimensional; C-F1/C-M1 are the actors' self-ratings
    categories = [c.strip() for c in rest.split("(")[0].split(";") if c.strip()]
    if not categories:
        problems.warning(path, number, f"rater {rater} of {block.utt} lists no category")
        return
    block.raters.append((rater, categories))


def _votes(block: _Block, *, merge_excited: bool, vote_mode: str
           ) -> tuple[np.ndarray, dict, list[list[float]]]:
    """Class votes from the external raters, the out-of-set votes that were dropped, and each
    rater's own in-set votes (for the annotator reference)."""
    votes = np.zeros(len(LABELS))
    dropped: dict[str, float] = {}
    per_rater = []
    for _rater, categories in block.raters:
        weight = 1.0 / len(categories) if vote_mode == "split" else 1.0
        own = np.zeros(len(LABELS))
        for raw in categories:
            name = RATER_CATEGORIES.get(raw.lower(), "Other")
            if name == "Excited" and merge_excited:
                name = "Happiness"
            if name in LABELS:
                own[LABELS.index(name)] += weight
            else:
                dropped[name] = dropped.get(name, 0.0) + weight
        votes += own
        if own.sum() > 0:
            per_rater.append(own.tolist())
    return votes, dropped, per_rater


def _to_item(block: _Block, session: Path, eval_file: Path, transcripts: dict[str, str],
             seen: set[str], skipped: Counter, problems: ProblemLog, *,
             merge_excited: bool, vote_mode: str) -> Item | None:
    consensus = dict(CONSENSUS, **({"exc": "Happiness"} if merge_excited else {}))
    if block.consensus not in consensus:
        skipped[f"consensus {block.consensus!r} not in the classes"] += 1
        return None
    if block.utt in seen:
        problems.error(eval_file, block.line, f"duplicate utterance id {block.utt}, kept the first")
        return None
    votes, dropped, per_rater = _votes(block, merge_excited=merge_excited, vote_mode=vote_mode)
    if votes.sum() <= 0:
        problems.error(eval_file, block.line, f"{block.utt} has no in-set external vote")
        return None
    dialog = block.utt.rsplit("_", 1)[0]
    try:
        wav = inside(session, f"sentences/wav/{dialog}/{block.utt}.wav", eval_file, block.line)
    except DataError as exc:
        problems.error(exc.path, exc.line, exc.reason)
        return None
    seen.add(block.utt)
    if block.utt not in transcripts:
        problems.warning(eval_file, block.line, f"no transcript line for {block.utt}")
    meta = {"session": session.name, "dialog": dialog, "consensus": block.consensus,
            "start": block.start, "end": block.end, "n_raters": len(block.raters),
            "dropped_votes": dropped, "rater_votes": per_rater}
    return Item(block.utt, wav, transcripts.get(block.utt, ""), votes, LABELS, meta)


def _read_transcripts(path: Path, problems: ProblemLog) -> dict[str, str]:
    """``utt id -> text``; lines not starting with ``Ses`` and ids containing ``XX`` are skipped."""
    if not os.path.lexists(path):  # a dangling link is there, to be named
        problems.warning(path, None, "transcription file missing")
        return {}
    out: dict[str, str] = {}
    try:
        lines = read_lines(path, problems, "transcription file")
    except DataError as exc:
        problems.warning(path, None, f"{exc.reason}: the dialog's transcripts are empty")
        return {}
    for line in lines:
        match = _TRANSCRIPT.match(line.strip())
        if match is None or "XX" in match.group(1):
            continue
        out[match.group(1)] = match.group(2).strip()
    return out
