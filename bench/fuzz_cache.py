"""Every field of a cache row set to each odd value, against the cells that read the cache.

    python -m bench.fuzz_cache                       # w-bon, alm-v, readout, cot, sample-n
    python -m bench.fuzz_cache --strategies w-bon readout

Fills a cache with the tiny model's cells on four CREMA-D items, then takes the first row of each
kind (a generation, with the optional fields an API's rows hold, a row of label scores, a clip's
content hash) and, for each field in it (of a list, its first two entries), sets it to each of
:data:`bench.fuzz_files.ODD_VALUES`, ``true``, -1e308 and NaN in turn, and runs every cell again
on the damaged cache. No cell may raise: a row
of the wrong shape is a miss, computed again. A cell whose predictions moved by more than 1e-5
is printed too (a row whose values are wrong but of the right types is read as it is: -1 for a
log-likelihood; an item computed again alone can move by ~1e-7, batched apart). Not part of the
tests (minutes): CI (``.ci/run``) runs it over ``w-bon`` and ``alm-v``; ``docs/reliability.md``
says what it found.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sqlite3
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

from bench.fuzz_files import ODD_VALUES, json_paths, set_at

MODEL = "tiny-qwen2-audio"
VALUES = [*ODD_VALUES, True, -1e308, math.nan]


def run_cells(strategies: list[str], cache: Path) -> dict:
    """Each strategy's item predictions on four CREMA-D items, with ``cache``."""
    import harness
    from harness.data import load_dataset
    from harness.runner import stratified_subsample

    items = stratified_subsample(load_dataset("crema_d"), 4)
    return {s: [i.probs for i in harness.evaluate(
        MODEL, items, s, cache=cache, n_resamples=10,
        verifier=MODEL if s.endswith("alm-v") else None).items] for s in strategies}


def moved(before: list, after: list) -> bool:
    return any((a is None) != (b is None) or (a is not None and max(
        abs(x - y) for x, y in zip(a, b)) > 1e-5) for a, b in zip(before, after))


def damaged_copy(clean: Path, work: Path, key: str, value: str) -> Path:
    """A copy of the cache at ``clean`` with the row ``key`` holding ``value``."""
    path = work / "damaged.sqlite"
    for old in work.glob("damaged.sqlite*"):
        old.unlink()
    with sqlite3.connect(clean) as db:  # the write-ahead log folded in first
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(clean, path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET value = ? WHERE key = ?", (value, key))
    return path


def _with_optional_fields(kind: str, value: str) -> str:
    """A generation row with the fields the tiny model's rows leave out (an API's snapshot, the
    backend's notes) filled in, so that they are damaged in turn too."""
    if kind != "generation":
        return value
    row = json.loads(value)
    row.setdefault("served_by", "snapshot-1")
    row.setdefault("notes", ["a note"])
    return json.dumps(row)


def fuzz_cache(strategies: list[str]) -> int:
    """Each field of each kind's first row against the cells; the number of cells that raised."""
    logging.disable(logging.WARNING)  # each damaged row is logged as it is recomputed
    warnings.simplefilter("ignore")
    raised = 0
    with tempfile.TemporaryDirectory(prefix="harness-fuzz-") as folder:
        work, clean = Path(folder), Path(folder) / "clean.sqlite"
        reference = run_cells(strategies, clean)
        with sqlite3.connect(clean) as db:
            rows = db.execute("SELECT kind, key, value FROM entries ORDER BY rowid").fetchall()
        first = {kind: (key, _with_optional_fields(kind, value)) for kind, key, value in reversed(rows)}
        for kind, (key, value) in sorted(first.items()):
            for where in json_paths(json.loads(value)):
                for odd in VALUES:
                    damaged = json.dumps(set_at(json.loads(value), where, odd))
                    cache = damaged_copy(clean, work, key, damaged)
                    try:
                        got = run_cells(strategies, cache)
                    except Exception:
                        raised += 1
                        print(f"{kind} {where} = {odd!r}: {traceback.format_exc()}")
                        continue
                    for strategy in (s for s in strategies if moved(reference[s], got[s])):
                        print(f"{kind} {where} = {odd!r}: {strategy}'s predictions moved")
    print(f"{', '.join(sorted(first))} rows, every field: {raised} runs raised")
    return raised


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+",
                        default=["w-bon", "alm-v", "readout", "cot", "sample-n"])
    return 1 if fuzz_cache(parser.parse_args(argv).strategies) else 0


if __name__ == "__main__":
    sys.exit(main())
