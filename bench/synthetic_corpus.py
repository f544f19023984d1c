"""A synthetic corpus of any size in MSP-Podcast's real on-disk layout (v1.11: ``Audios/``,
``Transcripts/``, ``Labels/labels_consensus.csv`` and the ``FileName,EmoDetail`` detailed file),
for the benchmarks: each clip is seeded noise under a tone, distinct from every other, so that no
two clips share bytes (a content hash cannot be reused across items by accident).

``python -m bench.synthetic_corpus OUT --items 2000 --seconds 6`` writes one.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

SR = 16_000
NAMES = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral")
CODES = "ASHUFDCN"
WORDS = "so what we found was that people really do care about the podcast".split()


def clip(n: int, seconds: float) -> np.ndarray:
    """The ``n``-th clip: int16 noise under a tone, seeded by ``n``."""
    rng = np.random.default_rng(n)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.2 * np.sin(2 * np.pi * (120 + n % 200) * t)
    return ((tone + 0.05 * rng.standard_normal(t.size)) * 32767).astype(np.int16)


def write_corpus(root: str | Path, items: int, seconds: float = 6.0, seed: int = 0) -> Path:
    """Write ``items`` utterances under ``root`` (the folder is created; files already there of
    the same name are overwritten). Returns ``root``."""
    import soundfile as sf

    root = Path(root)
    for folder in ("Audios", "Transcripts", "Labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    consensus = [["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender",
                  "Split_Set"]]
    detailed = [["FileName", "EmoDetail"]]
    for n in range(items):
        name = f"MSP-PODCAST_{n // 100:04d}_{n % 100:04d}.wav"
        major = n % len(NAMES)
        consensus.append([name, CODES[major], "4.0", "4.0", "4.0", str(n % 50),
                          "Female" if n % 2 else "Male", "Test1"])
        for worker in range(int(rng.integers(5, 8))):
            vote = NAMES[major] if rng.random() < 0.6 else NAMES[int(rng.integers(len(NAMES)))]
            detailed.append([name, f"WORKER{10 * n + worker:07d}; {vote}; ; A:4.0; V:4.0; D:4.0;"])
        sf.write(str(root / "Audios" / name), clip(n, seconds), SR, subtype="PCM_16")
        words = rng.choice(WORDS, size=int(rng.integers(4, 11)))
        (root / "Transcripts" / name.replace(".wav", ".txt")).write_text(" ".join(words))
    for file_name, table in (("labels_consensus.csv", consensus), ("labels_detailed.csv", detailed)):
        with open(root / "Labels" / file_name, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(table)
    return root


def corpus_under(work: Path, items: int) -> Path:
    """The corpus of ``items`` six-second clips at ``work/corpus-<items>``, written the first
    time (a marker file written last says that it is whole; a run stopped while writing starts
    over)."""
    import time

    root = work / f"corpus-{items}"
    if not (root / ".complete").is_file():
        start = time.perf_counter()
        write_corpus(root, items)
        (root / ".complete").write_text("")
        print(f"wrote {items} clips of 6 s under {root} in {time.perf_counter() - start:.0f} s",
              flush=True)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    write_corpus(args.out, args.items, args.seconds)
    print(f"{args.items} clips of {args.seconds:g} s written under {args.out}")


if __name__ == "__main__":
    main()
