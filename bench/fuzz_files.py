"""Mutated input files against the harness's readers: what a damaged release or run folder does.

    python -m bench.fuzz_files corpora --cases 1500 --seed 2   # label and transcript files
    python -m bench.fuzz_files records --cases 300 --seed 8    # a run's cell and items files
    python -m bench.fuzz_files numbers --cases 600 --seed 1    # one number of a cell file
    python -m bench.fuzz_files clips --cases 2000 --seed 3     # clips against libsndfile
    python -m bench.fuzz_files fields --cell tiny-qwen2-audio-iemocap-w-bon   # every field, in turn

``corpora``: copies of the three bundled corpora (clips left out: the loaders do not read them)
with one to three of their files mutated byte by byte (bytes changed, cut, spliced, doubled;
BOMs, NULs, CRLF, separators, shuffled lines); each must load, with every item's votes
non-negative, finite and non-zero, or raise ``DataError``, within 2 s.

``records``: copies of one run of the embedded default (IEMOCAP, the tiny model and the
uniform baseline, run first under ``--work``) with one to three cell files mutated, byte by byte
or as JSON (a field deleted or given another type); ``build_report`` must build the report
(a bad cell left out with its reason) and ``compare`` against the untouched run must answer or
raise ``CompareError``.

``numbers``: the same run's copies with one number of a cell file (its summary, or an item's
line) set to NaN, an infinity, -1, 0, 2.5, 10**20, 1e300, 10**300 or 10**400 (an integer no
float holds); the same must hold.

``fields``: not random: every field of one cell's summary and of its items file's first two
lines (of a list, its first two entries), each set in turn to each of :data:`ODD_VALUES` and
``true``, in a copy of that cell beside the untouched uniform baseline's on its corpus (any cell
of the embedded default's whole run, made first under ``--work``); ``python -m
harness.report`` must build the report and ``compare`` answer, as above. With ``--partly-invalid``,
of a run in which a model answered no distribution on most of CREMA-D's items and failed on
some, its base cell under each reading of those answers (``partly-crema_d-base``, left out;
``guessing-crema_d-base``, scored as uniform guesses), made first under ``--work``.

``clips``: a bundled clip (16-bit WAV, or a copy as stereo 44.1 kHz WAV or as FLAC) with its
header fields set to edge values or its bytes mutated; the first sight of it and ``read_audio``
must each give samples or raise ``AudioError``, agree with each other where both read it, and
where the standard library's reader took a plain WAV, libsndfile must read the same samples.

Every other exception is printed with its traceback and counted; the last line gives the count.
Not part of the tests (minutes of work): CI (``.ci/run``) runs a few minutes of ``corpora``,
``clips``, ``records``, ``numbers`` and a sample of ``fields`` (``--sample N``) on fixed seeds;
``docs/reliability.md`` says what each found.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from bench.partly_invalid import partly_invalid_run

INSERTS = [b",", b"\t", b"\n", b";", b'"', b"\x00", b"\r", b":", b"[", b"]", b"%", b" ", b"nan",
           b"-1", b"1e999", b"\xff\xfe", b"\xef\xbb\xbf"]
ODD_VALUES = [None, "x", -1, 1e308, 2.5, [], {}]
ODD_NUMBERS = [math.nan, math.inf, -math.inf, -1, 0, 2.5, 10**20, 1e300, 10**300, 10**400]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One to six byte-level changes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            out += b"x"
        i, op = rng.randrange(len(out)), rng.randrange(7)
        if op == 0:
            out[i] = rng.randrange(256)
        elif op == 1:
            del out[i:i + rng.randint(1, 50)]
        elif op == 2:
            out[i:i] = rng.choice(INSERTS)
        elif op == 3:
            del out[i:]
        elif op == 4:
            j = rng.randrange(len(out))
            out[i:i] = out[j:j + rng.randint(1, 200)]
        elif op == 5:
            out = bytearray(out.replace(b"\n", b"\r\n"))
        else:
            lines = out.split(b"\n")
            rng.shuffle(lines)
            out = bytearray(b"\n".join(lines))
    return bytes(out)


def mutate_json(value, rng: random.Random, depth: int = 0) -> None:
    """Delete one field somewhere in ``value``, or give it a value of another type."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        if depth > 3 or not isinstance(value[key], (dict, list)) or rng.random() < 0.4:
            if rng.random() < 0.2:
                del value[key]
            else:
                value[key] = rng.choice(ODD_VALUES)
        else:
            mutate_json(value[key], rng, depth + 1)
    elif isinstance(value, list) and value:
        i = rng.randrange(len(value))
        if isinstance(value[i], (dict, list)) and rng.random() < 0.7:
            mutate_json(value[i], rng, depth + 1)
        else:
            value[i] = rng.choice(ODD_VALUES)


def mutate_file(path: Path, rng: random.Random) -> None:
    """Bytes, or (for a JSON file or a JSON Lines file's line) one field."""
    if rng.random() < 0.5 and path.suffix in (".json", ".jsonl"):
        with contextlib.suppress(ValueError):  # not JSON (or not UTF-8): its bytes, below
            lines = path.read_text(encoding="utf-8").split("\n")
            i = 0 if path.suffix == ".json" else rng.randrange(max(1, len(lines) - 1))
            data = json.loads("\n".join(lines) if path.suffix == ".json" else lines[i])
            mutate_json(data, rng)
            text = json.dumps(data)
            path.write_text(text if path.suffix == ".json" else
                            "\n".join(lines[:i] + [text] + lines[i + 1:]))
            return
    path.write_bytes(mutate_bytes(path.read_bytes(), rng))


def corpus_case(work: Path, rng: random.Random) -> None:
    from harness._embedded import embedded_path
    from harness.data import DataError, load_dataset
    from harness.data.loader import CORPORA

    name = rng.choice(sorted(CORPORA))
    root = work / "corpus"
    shutil.copytree(embedded_path(*CORPORA[name].fixture), root,
                    ignore=shutil.ignore_patterns("*.wav"))
    files = [p for p in root.rglob("*") if p.is_file()]
    for path in rng.sample(files, k=min(len(files), rng.randint(1, 3))):
        mutate_file(path, rng)
    try:
        for item in load_dataset(name, root):
            votes = item.votes
            assert (votes >= 0).all() and votes.sum() > 0 and (votes == votes).all(), item.id
    except DataError:
        pass


def number_paths(value, path: tuple = ()) -> list[tuple]:
    """Where the numbers in a JSON value are (of a list, only its first two entries)."""
    if isinstance(value, dict):
        return [p for key, v in value.items() for p in number_paths(v, (*path, key))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value[:2]) for p in number_paths(v, (*path, i))]
    return [path] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def set_number(path: Path, rng: random.Random) -> None:
    """One number of a cell file (its summary, or one item's line) set to an odd one."""
    lines = path.read_text(encoding="utf-8").split("\n")
    line = None if path.suffix == ".json" else rng.randrange(1, max(2, len(lines) - 1))
    where = rng.choice(number_paths(json.loads("\n".join(lines) if line is None else lines[line]))
                       or [()])
    if where:
        set_field(path, line, where, rng.choice(ODD_NUMBERS))


def set_at(data, where: tuple, value: object):
    """``data`` (a JSON value) with the value at ``where`` (keys and indices) set to ``value``."""
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    return data


def records_case(work: Path, rng: random.Random, run: Path, numbers: bool = False) -> None:
    from harness.report import build_report
    from harness.report.compare import CompareError, compare

    copy = work / "run"
    shutil.copytree(run, copy)
    files = sorted((copy / "cells").iterdir())
    for path in rng.sample(files, k=1 if numbers else rng.randint(1, 3)):
        set_number(path, rng) if numbers else mutate_file(path, rng)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        build_report(copy)
        with contextlib.suppress(CompareError):
            compare(run, copy, n_resamples=50)


def json_paths(value, path: tuple = ()) -> list[tuple]:
    """Where every value inside a JSON value is (of a list, only its first two entries)."""
    inner = list(value.items() if isinstance(value, dict) else
                 enumerate(value[:2]) if isinstance(value, list) else ())
    return [(*path, key) for key, _ in inner] + [
        p for key, v in inner for p in json_paths(v, (*path, key))]


def field_cases(cells: Path, cell: str) -> list[tuple[str, int | None, tuple, object]]:
    """(file name, line or None for the summary, where, value) for every field of ``cell``'s
    summary (its items left to the items file) and of its items file's first two lines."""
    out = []
    for name, line in ((f"{cell}.json", None), (f"{cell}.items.jsonl", 0), (f"{cell}.items.jsonl", 1)):
        text = (cells / name).read_text(encoding="utf-8")
        data = json.loads(text if line is None else text.split("\n")[line])
        out += [(name, line, where, value) for where in json_paths(data)
                if not (line is None and where[0] == "items") for value in [*ODD_VALUES, True]]
    return out


def set_field(path: Path, line: int | None, where: tuple, value: object) -> None:
    """The value at ``where`` in a cell file's summary (``line`` None) or one of its lines set."""
    lines = path.read_text(encoding="utf-8").split("\n")
    data = json.loads("\n".join(lines) if line is None else lines[line])
    text = json.dumps(set_at(data, where, value))  # NaN and the infinities as Python writes them
    path.write_text(text if line is None else "\n".join(lines[:line] + [text] + lines[line + 1:]))


def drawn(cases: list, sample: int | None, seed: int) -> list:
    """A random ``sample`` of ``cases`` drawn with ``seed``, in their order; all where ``sample``
    is None or not fewer."""
    if sample is None or sample >= len(cases):
        return cases
    return [cases[k] for k in sorted(random.Random(seed).sample(range(len(cases)), sample))]


def fields(run: Path, cell: str, sample: int | None = None, seed: int = 0) -> int:
    """Each of :func:`field_cases` (or a random ``sample`` of them, drawn with ``seed``) against
    the report and ``compare``; the number that raised."""
    from harness.report.__main__ import main as report
    from harness.report.compare import CompareError, compare

    with tempfile.TemporaryDirectory(prefix="harness-fuzz-") as work:
        base = Path(work) / "run"
        (base / "cells").mkdir(parents=True)
        dataset = json.loads((run / "cells" / f"{cell}.json").read_text())["dataset"]
        for name in (cell, f"uniform-{dataset}-base"):
            for path in (run / "cells").glob(f"{name}.*"):
                shutil.copy(path, base / "cells")
        cases, unexpected = drawn(field_cases(base / "cells", cell), sample, seed), 0
        for name, line, where, value in cases:
            copy = Path(work) / "copy"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(base, copy)
            set_field(copy / "cells" / name, line, where, value)
            try:
                with (warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()),
                      contextlib.redirect_stderr(io.StringIO())):
                    warnings.simplefilter("ignore")
                    report([str(copy)])
                    with contextlib.suppress(CompareError):
                        compare(base, copy, n_resamples=20)
            except Exception:
                unexpected += 1
                print(f"{name} line {line} {where} = {value!r}: {traceback.format_exc()}")
    note = "" if sample is None else f" (a sample, seed {seed})"
    print(f"{len(cases)} fields of {cell}{note}: {unexpected} unexpected exceptions")
    return unexpected


WAV_FIELDS = [(4, 4), (16, 4), (20, 2), (22, 2), (24, 4), (28, 4), (32, 2), (34, 2), (40, 4)]
EDGES = [0, 1, 2, 3, 8, 16, 24, 44, 255, 1000, 16000, 65535, 2**31 - 1, 2**32 - 1]


def mutate_wav(data: bytes, rng: random.Random) -> bytes:
    """One to three of a canonical WAV's header fields (sizes, format, channels, rate, block
    align, width) set to an edge value, or its bytes mutated."""
    if rng.random() < 0.4:
        return mutate_bytes(data, rng)
    out = bytearray(data)
    for offset, width in rng.sample(WAV_FIELDS, k=rng.randint(1, 3)):
        value = rng.choice(EDGES) % (1 << (8 * width))
        out[offset:offset + width] = value.to_bytes(width, "little")
    return bytes(out)


def clip_case(work: Path, rng: random.Random) -> None:
    import numpy as np
    import soundfile as sf

    from harness._embedded import embedded_path
    from harness.data import AudioError
    from harness.data._pcm_wav import read_pcm16
    from harness.data.audio import read_audio
    from harness.data.clips import MEMO, first_sight

    source = rng.choice(sorted(embedded_path("crema_d", "AudioWAV").glob("*.wav")))
    path, form = work / "clip.wav", rng.choice(["wav", "stereo", "flac"])
    if form == "wav":
        path.write_bytes(mutate_wav(source.read_bytes(), rng))
    else:
        data, rate = sf.read(str(source), dtype="int16")
        sf.write(str(path), np.stack([data, data[::-1]], axis=1) if form == "stereo" else data,
                 44_100 if form == "stereo" else rate, format="WAV" if form == "stereo" else "FLAC",
                 subtype="PCM_16")
        path.write_bytes((mutate_wav if form == "stereo" else mutate_bytes)(path.read_bytes(), rng))
    MEMO.clear()
    got = {}
    for name, read in (("first sight", lambda: first_sight(path)[1]),
                       ("read_audio", lambda: read_audio(path)[0])):
        with contextlib.suppress(AudioError):
            got[name] = read()
    if got.get("first sight") is not None and "read_audio" in got:
        assert np.array_equal(got["first sight"], got["read_audio"]), "the two readings differ"
    with contextlib.suppress(AudioError, OSError):
        ours = read_pcm16(path)
        if ours is not None:  # wave read it: libsndfile must read the same samples
            head = path.read_bytes()[:44].hex(" ", 2)
            try:
                theirs = sf.read(str(path), dtype="int16", always_2d=True)[0]
            except sf.LibsndfileError as exc:
                raise AssertionError(f"wave read what libsndfile refuses ({exc}); header {head}") from None
            assert np.array_equal(ours[0], theirs), f"wave and libsndfile differ; header {head}"


def one_run(work: Path, whole: bool = False) -> Path:
    """A run of the embedded default's IEMOCAP cells of the tiny model and the uniform baseline,
    or (``whole``) of all its cells: every corpus, every baseline."""
    reports = work / ("whole" if whole else "") / "reports"
    if not reports.is_dir():
        subprocess.run([sys.executable, "-m", "pytest", "evals", "-q", "-p", "no:cacheprovider",
                        *([] if whole else ["-k", "iemocap and (tiny or uniform)"]),
                        "--report-dir", str(reports), "--cache-dir", str(reports.parent / "cache")],
                       check=True, capture_output=True)
    return sorted(reports.iterdir())[-1]


def fuzz(case: Callable[[Path, random.Random], None], cases: int, seed: int, slow: float) -> int:
    """Run ``cases`` cases; print each unexpected exception and each case slower than ``slow``
    seconds; the number of unexpected exceptions."""
    rng, unexpected = random.Random(seed), 0
    for n in range(cases):
        work = Path(tempfile.mkdtemp(prefix="harness-fuzz-"))
        start = time.perf_counter()
        try:
            case(work, rng)
        except Exception:
            unexpected += 1
            print(f"case {n}: {traceback.format_exc()}")
        finally:
            shutil.rmtree(work)
        if time.perf_counter() - start > slow:
            print(f"case {n}: {time.perf_counter() - start:.1f} s")
    print(f"{cases} cases, seed {seed}: {unexpected} unexpected exceptions")
    return unexpected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("corpora", "records", "numbers", "fields", "clips"))
    parser.add_argument("--cell", default="tiny-qwen2-audio-iemocap-w-bon", help="for fields")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--sample", type=int, help="for fields: this many of its cases, drawn "
                                                   "with --seed (default: every one)")
    parser.add_argument("--partly-invalid", action="store_true",
                        help="for fields: a cell of a run with invalid items (partly-crema_d-base "
                             "or guessing-crema_d-base)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-fuzz")
    args = parser.parse_args(argv)
    if args.what in ("corpora", "clips"):
        case = corpus_case if args.what == "corpora" else clip_case
        return 1 if fuzz(case, args.cases, args.seed, slow=2.0) else 0
    args.work.mkdir(parents=True, exist_ok=True)
    if args.what == "fields":
        run = partly_invalid_run(args.work) if args.partly_invalid else one_run(args.work, whole=True)
        return 1 if fields(run, args.cell, args.sample, args.seed) else 0
    run = one_run(args.work)
    numbers = args.what == "numbers"
    return 1 if fuzz(lambda work, rng: records_case(work, rng, run, numbers), args.cases,
                     args.seed, slow=20.0) else 0


if __name__ == "__main__":
    sys.exit(main())
