"""CREMA-D: voice-only rows of ``processedResults/tabulatedVotes.csv``, clips in ``AudioWAV/``.

The public release's label files ship with the project (``harness/embedded/crema_d_release``, ODbL), so a
root holding only ``AudioWAV/`` (as most mirrors of the audio do) still gets the real votes; its
items are then the clips the mirror holds (a partial mirror is a smaller corpus, its missing clips
counted as skipped, not 7,442 items of which most fail for want of audio).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from harness._embedded import embedded_path
from harness._regular import not_a_regular_file
from harness.data._files import inside, read_csv
from harness.data.dataset import Item
from harness.data.options import file_path
from harness.data.problems import DataError, ProblemLog

LABELS = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")
VOTE_COLUMNS = ("A", "D", "F", "H", "N", "S")
QUERY_TYPES = {1: "voice", 2: "face", 3: "audio-visual"}
SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting", "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before",
    "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes",
}  # fmt: skip
VOTES_FILE = Path("processedResults") / "tabulatedVotes.csv"
OPTIONS = {"votes_file": file_path}


def release_labels() -> Path:
    """The public release's label files (with their ODbL licence), shipped in the package."""
    return embedded_path("crema_d_release")


def load(root: Path, problems: ProblemLog, *, votes_file: str | Path | None = None
         ) -> tuple[tuple[str, ...], list[Item], Counter]:
    """Read the voice-only ratings of the clips under ``root``.

    Args:
        votes_file: The ``tabulatedVotes.csv`` to read. Default: the root's own, else the copy of
            the public release shipped with the project (recorded as a warning).
    """
    path, shipped = _votes_path(root, votes_file, problems)
    held = _clips_held(root) if shipped else None
    frame = read_csv(path, [*VOTE_COLUMNS, "fileName", "emoVote"], problems)
    frame = frame.rename(columns={frame.columns[0]: "row_id"})  # R's write.csv header ""
    items: list[Item] = []
    skipped: Counter = Counter()
    seen: set[str] = set()
    for line, row in enumerate(frame.to_dict("records"), start=2):
        item = _row_to_item(root, row, line, path, skipped, problems)
        if item is None:
            continue
        if held is not None and item.id not in held:
            skipped[NOT_IN_MIRROR] += 1
            continue
        if item.id in seen:
            problems.error(path, line, f"duplicate voice-only row for {item.id}, kept the first")
            continue
        seen.add(item.id)
        items.append(item)
    return LABELS, items, skipped


NOT_IN_MIRROR = "clip not in AudioWAV/ (the shipped release votes, read for the clips held)"


def _clips_held(root: Path) -> set[str]:
    """The names (without ``.wav``) of the clips in ``root/AudioWAV``."""
    try:
        with os.scandir(root / "AudioWAV") as entries:
            return {entry.name[:-4] for entry in entries if entry.name.endswith(".wav")}
    except OSError as exc:
        raise DataError(root / "AudioWAV", f"cannot be listed: {exc.strerror or exc}") from exc


def _votes_path(root: Path, votes_file, problems: ProblemLog) -> tuple[Path, bool]:
    """The votes file to read, and whether it is the shipped copy of the release's (read for
    the clips the root holds)."""
    if votes_file is not None:
        why = not_a_regular_file(Path(votes_file))
        if why is not None:
            raise DataError(votes_file, f"the votes_file option's label file {why}")
        return Path(votes_file), False
    why = not_a_regular_file(root / VOTES_FILE)
    if why is None:
        return root / VOTES_FILE, False
    if why != "not found":  # there, but not a file to read: never fall back silently
        raise DataError(root / VOTES_FILE, f"label file {why}")
    if not (root / "AudioWAV").is_dir():
        raise DataError(root, "neither AudioWAV/ nor processedResults/: not a CREMA-D root")
    problems.warning(root / VOTES_FILE, None, "absent; using the public release's votes "
                                              f"shipped in {release_labels()} for the clips "
                                              "in AudioWAV/")
    return release_labels() / VOTES_FILE, True


def _row_to_item(root: Path, row: dict, line: int, path: Path, skipped: Counter,
                 problems: ProblemLog) -> Item | None:
    try:
        query_type = int(row["row_id"]) // 100000
    except ValueError:
        problems.error(path, line, f"row id {row['row_id']!r} is not a number")
        return None
    if query_type != 1:
        skipped[f"{QUERY_TYPES.get(query_type, 'unknown')} ratings (not voice-only)"] += 1
        return None
    name = row["fileName"].strip()
    try:
        votes = np.array([float(row[c]) for c in VOTE_COLUMNS])
    except ValueError:
        problems.error(path, line, f"{name}: vote counts are not numbers")
        return None
    if not np.isfinite(votes).all() or (votes < 0).any() or votes.sum() <= 0:
        problems.error(path, line, f"{name}: no valid votes {votes.tolist()}")
        return None
    _check_emo_vote(row["emoVote"], votes, name, path, line, problems)
    try:
        wav = inside(root, f"AudioWAV/{name}.wav", path, line)
    except DataError as exc:
        problems.error(exc.path, exc.line, exc.reason)
        return None
    parts = name.split("_")
    sentence = parts[1] if len(parts) == 4 else ""
    if sentence not in SENTENCES:
        problems.warning(path, line, f"{name}: unknown sentence code, transcript left empty")
    meta = {"actor": parts[0], "sentence": sentence,
            "intended": parts[2] if len(parts) == 4 else "",
            "level": parts[3] if len(parts) == 4 else "", "emo_vote": row["emoVote"]}
    return Item(name, wav, SENTENCES.get(sentence, ""), votes, LABELS, meta)


def _check_emo_vote(emo_vote: str, votes: np.ndarray, name: str, path: Path, line: int,
                    problems: ProblemLog) -> None:
    """The release's own majority (ties written ``"A:D"``) must agree with the counts."""
    top = {VOTE_COLUMNS[i] for i in np.flatnonzero(votes == votes.max())}
    if set(emo_vote.strip().split(":")) != top:
        problems.warning(path, line, f"{name}: emoVote {emo_vote!r} disagrees with the counts")
