"""Why a cold cell's clip reading does not run beside its consumer on this project's 2-core
machine: the CPU time a cold whole cell takes against its wall time, the clip reader's work on
one thread and on two, and a cold cell under shorter switch intervals of the interpreter.

    python -m bench.reader_overlap                 # 1,000 six-second clips under /tmp
    python -m bench.reader_overlap --items 2000 --work /tmp/overhead

What it shows, and what :mod:`bench.overhead`'s "the clip reader beside its consumer" only
implies: when the CPU time of all the process's threads is no more than its wall time, the
reader's thread and the consumer did not run at the same time, whatever the reader's calls
that let the interpreter's lock go (a file's read, numpy's conversion) would allow. Run as a
script, it holds OpenBLAS's own threads to one (``OPENBLAS_NUM_THREADS``, set before numpy
loads where it is not set already), so that a BLAS thread spinning after numpy's small
products is not counted as the reader's work.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # run as a script, before numpy loads (see the module's text); an
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # import, a test's, leaves the env alone

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bench.instant_model import InstantModel  # noqa: E402
from bench.machine_speed import speed_noted  # noqa: E402
from bench.overhead import cold_cell, fresh_state  # noqa: E402
from bench.synthetic_corpus import corpus_under  # noqa: E402

REPEATS = 3
SWITCH_INTERVALS = (0.005, 0.001, 50e-6, 20e-6)  # seconds; Python's default first


def cpu_against_wall(dataset, work: Path, names=("base", "w-bon")) -> None:
    model = InstantModel(dataset.labels)
    cold_cell(model, dataset, "base", work)  # untimed warm-up
    print(f"\na cold whole cell ({len(dataset)} items, new clips): wall time against CPU time, "
          f"the median of {REPEATS} runs each:")
    for name in names:
        runs = [cold_cell(model, dataset, name, work) for _ in range(REPEATS)]
        wall, cpu, own = (statistics.median(column) for column in zip(*runs))
        print(f"  {name:8} wall {wall * 1e3:5.0f} ms; CPU {cpu * 1e3:5.0f} ms in all: the cell's "
              f"thread {own * 1e3:5.0f}, the others (chunks, clips) {(cpu - own) * 1e3:5.0f}; "
              f"side by side {max(0.0, cpu - wall) * 1e3:4.0f} ms")


def _first_sight_each(paths) -> None:
    from harness.data.arena import ARENA
    from harness.data.clips import first_sight, identity

    for path in paths:
        first_sight(path, key=identity(path), out=ARENA.take)


_LOCAL = threading.local()


def _read_and_convert_each(paths) -> None:
    """Each file read whole and its 16-bit samples (past a 44-byte header) converted to float32
    in this thread's buffer: the reader's work that lets the interpreter's lock go, alone."""
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        samples = np.frombuffer(data, dtype="<i2", count=(len(data) - 44) // 2, offset=44)
        out = getattr(_LOCAL, "out", None)
        if out is None or out.size < samples.size:
            out = _LOCAL.out = np.empty(samples.size, dtype=np.float32)
        np.multiply(samples, np.float32(1 / 32768), dtype=np.float32, out=out[:samples.size])


def _on_threads(work_on, paths, threads: int) -> float:
    fresh_state()
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work_on, [paths[i::threads] for i in range(threads)]))
    return time.perf_counter() - start


def thread_scaling(dataset) -> None:
    paths = [item.audio_path for item in dataset]
    print(f"\nthe clip reader's work on one thread and on two ({len(paths)} clips), ms, the "
          f"median of {REPEATS} runs:")
    for what, work_on in (("first sight (read, hash, header, decode)", _first_sight_each),
                          ("the file's read and conversion alone", _read_and_convert_each)):
        _on_threads(work_on, paths, 1)  # untimed: the page cache and the arena warmed
        ms = [statistics.median(_on_threads(work_on, paths, n) for _ in range(REPEATS)) * 1e3
              for n in (1, 2)]
        print(f"  {what:42} 1 thread {ms[0]:5.0f}, 2 threads {ms[1]:5.0f} ({ms[0] / ms[1]:.2f}x)")


def switch_intervals(dataset, work: Path, name: str = "w-bon") -> None:
    model = InstantModel(dataset.labels)
    print(f"\na cold {name} cell under each switch interval of the interpreter "
          f"(sys.setswitchinterval), utt/s, the median of {REPEATS} runs taken in turn:")
    before = sys.getswitchinterval()
    rates: dict[float, list[float]] = {s: [] for s in SWITCH_INTERVALS}
    try:
        for _ in range(REPEATS):
            for interval in SWITCH_INTERVALS:
                sys.setswitchinterval(interval)
                rates[interval].append(len(dataset) / cold_cell(model, dataset, name, work)[0])
    finally:
        sys.setswitchinterval(before)
    print("  " + ", ".join(f"{interval * 1e6:,.0f} us: {statistics.median(r):,.0f}"
                           for interval, r in rates.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-overhead")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    from harness.data import load_dataset

    dataset = load_dataset("msp_podcast", corpus_under(args.work, args.items))
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"{os.cpu_count()} cores")
    with speed_noted():
        cpu_against_wall(dataset, args.work)
        thread_scaling(dataset)
        switch_intervals(dataset, args.work)


if __name__ == "__main__":
    main()
