"""MSP-Podcast: consensus CSV for the item list and split, per-worker primary votes for the label.

Layout read::

    Audios/MSP-PODCAST_XXXX_YYYY.wav
    Transcripts/MSP-PODCAST_XXXX_YYYY.txt
    Labels/labels_consensus.csv     (folder Labels, labels or label; labels_concensus.csv before 1.10)
    Labels/labels_detailed.csv      (v1.6 columns, or FileName,EmoDetail from v1.7 on)
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from harness.data._files import inside, parse_csv, read_csv, read_lines, read_text
from harness.data.dataset import Item
from harness.data.options import flag, some_of
from harness.data.problems import DataError, ProblemLog

LABELS = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral")
CODES = dict(zip("ASHUFDCN", LABELS))
SPLITS = ("Train", "Development", "Test1", "Test2", "Test3")
OPTIONS = {"split": some_of(SPLITS), "include_no_consensus": flag}
_NAMES = {label.lower(): label for label in LABELS} | {
    "anger": "Angry", "sadness": "Sad", "happiness": "Happy", "surprised": "Surprise",
    "fearful": "Fear", "disgusted": "Disgust", "contemptuous": "Contempt",
}  # fmt: skip
_LABEL_DIRS = ("Labels", "labels", "label")
_DIMENSION = re.compile(r"^[AVD]\s*:")  # "A:4.0" where the primary emotion should be
_CONSENSUS_FILES = ("labels_consensus.csv", "labels_concensus.csv")
_CONSENSUS_COLUMNS = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                      "Split_Set"]
_V16_COLUMNS = ["FileName", "Workers", "EmoClass_Major", "EmoClass_Second"]


def load(root: Path, problems: ProblemLog, *, split=None, include_no_consensus: bool = False
         ) -> tuple[tuple[str, ...], list[Item], Counter]:
    """Read the corpus under ``root``.

    Args:
        split: One ``Split_Set`` value or a list of them (default: every split).
        include_no_consensus: Also keep items whose consensus is ``X`` (no agreement) or ``O``
            (other); their soft labels still come from the in-set worker votes.
    """
    wanted = _wanted_splits(split)
    consensus_path, detailed_path = _label_paths(root)
    consensus = read_csv(consensus_path, _CONSENSUS_COLUMNS, problems)
    votes, dropped = _read_detailed(detailed_path, problems)
    items: list[Item] = []
    skipped: Counter = Counter()
    seen: set[str] = set()
    no_transcript: list[Path] = []
    for row_number, row in enumerate(consensus.itertuples(index=False), start=2):
        name, code, split_set = row.FileName.strip(), row.EmoClass.strip(), row.Split_Set.strip()
        if wanted is not None and split_set not in wanted:
            skipped[f"split {split_set!r} not selected"] += 1
            continue
        if code not in CODES and not (include_no_consensus and code in ("X", "O")):
            skipped[f"consensus {code!r} not in the classes"] += 1
            continue
        if name in seen:
            problems.error(consensus_path, row_number, f"duplicate file name {name}, kept the first")
            continue
        item = _to_item(root, row, row_number, consensus_path, votes, dropped, problems,
                        no_transcript)
        if item is not None:
            seen.add(name)
            items.append(item)
    if no_transcript:  # one warning, not one per item: a release may ship no Transcripts/
        problems.warning(root / "Transcripts", None,
                         f"{len(no_transcript)} of the {len(items)} items have no transcript "
                         f"file (the first: {no_transcript[0].name}): their prompts' 'Target "
                         "Utterance:' is empty")
    return LABELS, items, skipped


def _wanted_splits(split) -> set[str] | None:
    if split is None:
        return None
    wanted = {split} if isinstance(split, str) else set(split)
    unknown = wanted - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown MSP-Podcast split(s) {sorted(unknown)}; use {SPLITS}")
    return wanted


def _label_paths(root: Path) -> tuple[Path, Path]:
    """The consensus and detailed label files, whichever release spelling is present (one that
    is there but no regular file, a FIFO, is returned for its reader to name)."""
    for folder in _LABEL_DIRS:
        for name in _CONSENSUS_FILES:
            path = root / folder / name
            if os.path.lexists(path) and not path.is_dir():
                return path, root / folder / "labels_detailed.csv"
    raise DataError(root, "no Labels/labels_consensus.csv (or labels/, label/, "
                          "labels_concensus.csv): not an MSP-Podcast root")


def _primary(raw: str) -> str:
    """A worker's primary emotion as a class name, or ``"Other"`` for anything out of set."""
    text = raw.strip()
    if text in CODES:
        return CODES[text]
    return _NAMES.get(text.lower(), "Other")


def _read_detailed(path: Path, problems: ProblemLog) -> tuple[dict, dict]:
    """Per-file class votes and dropped out-of-set votes, from either detailed layout."""
    text = read_text(path, problems)  # read once; a DataError naming it: missing, a FIFO, ...
    if "EmoDetail" in text.partition("\n")[0]:
        frame = parse_csv(text, path, ["FileName", "EmoDetail"])
        rows = (_parse_emo_detail(r.EmoDetail, path, n, problems) + (r.FileName,)
                for n, r in enumerate(frame.itertuples(index=False), start=2))
    else:
        frame = parse_csv(text, path, _V16_COLUMNS)
        rows = ((r.Workers.strip(), r.EmoClass_Major, r.FileName)
                for r in frame.itertuples(index=False))
    votes: dict[str, np.ndarray] = {}
    dropped: dict[str, Counter] = {}
    workers: dict[str, set[str]] = {}
    for line, (worker, primary, name) in enumerate(rows, start=2):
        name = name.strip()
        if worker is None:
            continue
        if worker and worker in workers.setdefault(name, set()):
            problems.warning(path, line, f"worker {worker} rated {name} twice; kept the first")
            continue
        workers[name].add(worker)
        label = _primary(primary)
        if label in LABELS:
            votes.setdefault(name, np.zeros(len(LABELS)))[LABELS.index(label)] += 1
        else:
            dropped.setdefault(name, Counter())[primary.strip() or "(empty)"] += 1
    return votes, dropped


def _parse_emo_detail(text: str, path: Path, line: int, problems: ProblemLog):
    """``"WORKER00012; Angry; Frustrated,Annoyed; A:4.0; V:2.0; D:5.0;"`` -> (worker, primary)."""
    fields = [f.strip() for f in str(text).split(";")]
    if (len(fields) < 2 or not fields[0] or not fields[1] or ":" in fields[0]
            or _DIMENSION.match(fields[1])):
        problems.error(path, line, f"malformed EmoDetail {str(text)[:60]!r}, row skipped")
        return (None, "")
    return (fields[0], fields[1])


def _to_item(root: Path, row, row_number: int, consensus_path: Path, votes: dict,
             dropped: dict, problems: ProblemLog, no_transcript: list[Path]) -> Item | None:
    """The row's item, or None (the reason recorded); a missing transcript file is appended to
    ``no_transcript`` and the item kept, with an empty transcript."""
    name = row.FileName.strip()
    if name not in votes:
        problems.error(consensus_path, row_number, f"{name} has no in-set worker vote")
        return None
    try:
        wav = inside(root, f"Audios/{name}", consensus_path, row_number)
        transcript_path = inside(root, f"Transcripts/{Path(name).stem}.txt", consensus_path,
                                 row_number)
    except DataError as exc:
        problems.error(exc.path, exc.line, exc.reason)
        return None
    transcript = ""
    if not os.path.lexists(transcript_path):  # a dangling link is there, to be named
        no_transcript.append(transcript_path)
    else:
        try:
            transcript = " ".join(read_lines(transcript_path, problems, "transcript")).strip()
        except DataError as exc:  # a FIFO, a directory, a dangling link, an I/O error
            problems.warning(transcript_path, None, f"{exc.reason}: its item is kept, with an empty one")
    meta = {"consensus": row.EmoClass.strip(), "split": row.Split_Set.strip(),
            "speaker": row.SpkrID.strip(), "gender": row.Gender.strip(),
            "arousal": _float(row.EmoAct), "valence": _float(row.EmoVal),
            "dominance": _float(row.EmoDom), "dropped_votes": dict(dropped.get(name, {}))}
    return Item(Path(name).stem, wav, transcript, votes[name], LABELS, meta)


def _float(text: str) -> float:
    """A dimensional rating (``EmoAct`` etc.), NaN where the cell holds no number (as pandas'
    ``to_numeric(errors="coerce")`` reads it, at a tenth of the time)."""
    try:
        return float(text) if "_" not in text else math.nan
    except ValueError:
        return math.nan
