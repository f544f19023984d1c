"""The harness's own cost: every strategy with a model that answers at once, on 6-second clips.

    python -m bench.overhead                       # 1,000 items; peak memory at 1,000 and 20,000
    python -m bench.overhead --items 2000 --rss 1000,5000 --work /tmp/overhead

A synthetic corpus in MSP-Podcast's layout (:mod:`bench.synthetic_corpus`) is written under
``--work`` once. For each strategy it prints items per second of

- **new clips**: nothing known (the clip memo empty, a new cache file): every clip hashed and
  read, every generation computed and stored;
- **known clips**: the clips' hashes known (a grid's later cells on the corpus), the cache empty:
  every clip read;
- **rerun**: that cache reopened with the memo emptied, as a new process finds it: every
  generation cached, so no clip is read or hashed (their hashes come from the cache's clip rows);

each for the strategy alone (``run_strategy``) and for the whole cell (``evaluate`` with its
metrics, bootstrap CIs and record written), each figure the median of three runs. Then each
stage alone; a cold run's clip reader beside a consumer that either waits (the lock let go) or
computes in Python, and how long the consumer waited for clips in each; a cold whole cell beside
a model that waits per request (as a process waits on its GPU, the interpreter's lock let go),
and what the harness adds to that wait; and the peak resident memory of a cold w-bon cell at
each size of ``--rss`` (a fresh process per size). Targets (this project's issue 18, on a
2-core machine): >= 5,000 utt/s end to end for every strategy, a rerun >= 20,000 utt/s; peak
memory at 20,000 items within 1.5x of that at 1,000.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.instant_model import InstantModel
from bench.machine_speed import speed_noted
from bench.synthetic_corpus import corpus_under

STRATEGIES = ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n")


def fresh_state() -> None:
    """Forget every clip's facts, as a new process starts."""
    from harness.data.clips import MEMO

    MEMO.clear()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


RUNS = ("new clips", "known clips", "rerun")


def strategy_rates(dataset, work: Path) -> None:
    """Items per second of each strategy alone and of its whole cell, in three states."""
    from harness.runner.evaluate import evaluate

    model = InstantModel(dataset.labels)
    fresh_state()
    evaluate(model, dataset, "base")  # untimed warm-up: imports, the arena's first blocks
    print(f"\n{len(dataset)} items; items/s (utt/s) with the instant model, cache on, after one "
          f"untimed warm-up run; each the median of {REPEATS} runs:")
    print(f"{'':10} {'strategy alone':^32}   {'whole cell (evaluate + record)':^32}")
    print(f"{'strategy':10} " + " ".join(f"{r:>10}" for r in RUNS) + "   "
          + " ".join(f"{r:>10}" for r in RUNS))
    for name in STRATEGIES:
        rates = [_rates(dataset, model, name, work, whole_cell) for whole_cell in (False, True)]
        print(f"{name:10} " + " ".join(f"{r:10,.0f}" for r in rates[0]) + "   "
              + " ".join(f"{r:10,.0f}" for r in rates[1]))
    print("  new clips: nothing known (memo empty, new cache); known clips: memo filled, cache "
          "empty (a grid's later cells); rerun: the first run's cache reopened with the memo emptied (a "
          "new process): every generation cached, clip hashes from its clip rows, no clip read")


def _rates(dataset, model, name: str, work: Path, whole_cell: bool) -> list[float]:
    """Items per second in each state of :data:`RUNS`, the median of :data:`REPEATS` runs."""
    runs = [_one_rate_each(dataset, model, name, work, whole_cell) for _ in range(REPEATS)]
    return [statistics.median(rates) for rates in zip(*runs)]


REPEATS = 3  # runs per figure: one run alone swung by up to 30% on the 2-core machine


def _one_rate_each(dataset, model, name: str, work: Path, whole_cell: bool) -> list[float]:
    from harness.cache import GenerationCache
    from harness.record import write_record
    from harness.runner.evaluate import evaluate
    from harness.strategies import run_strategy

    rates = []
    folder = Path(tempfile.mkdtemp(dir=work))
    first = folder / "first" / "generations.sqlite"
    for state in RUNS:
        # the rerun reopens the first run's cache: its generations and its clips' hashes
        path = folder / "known" / "generations.sqlite" if state == "known clips" else first
        path.parent.mkdir(exist_ok=True)
        if state != "known clips":
            fresh_state()
        cache = GenerationCache(path)
        if whole_cell:
            seconds = timed(lambda c=cache, p=path: write_record(evaluate(
                model, dataset, name, verifier=model, cache=c), p.parent / "run"))
        else:
            seconds = timed(lambda c=cache: run_strategy(name, model, dataset, cache=c,
                                                         verifier=model))
        cache.close()
        rates.append(len(dataset) / seconds)
    shutil.rmtree(folder)
    return rates


def _each(read, items) -> None:
    for item in items:  # each result dropped at once, as a chunk's audio is once the model has it
        read(item.audio_path)


def _drain(chunks) -> None:
    for _ in chunks:  # each chunk dropped before the next, as the runner drops them
        pass


def stage_rates(dataset, work: Path) -> None:
    """Each stage alone, items per second."""
    from harness.cache import GenerationCache, cached_generate, generation_keys
    from harness.parsing import parse_verdict
    from harness.strategies import StrategyConfig, get_strategy

    n, items = len(dataset), list(dataset)
    model = InstantModel(dataset.labels)
    strategy, config = get_strategy("w-bon"), StrategyConfig()
    decoding = strategy.decoding(config, dataset.labels)
    folder = Path(tempfile.mkdtemp(dir=work))
    cache = GenerationCache(folder / "stages.sqlite")
    prompt = strategy.prompt(dataset.name, "", dataset.labels)
    stages, requests = clip_stages(dataset, cache, prompt)
    stages["generation keys"] = timed(lambda: generation_keys(model.info, requests, decoding))
    stages["generate + store (instant model, w-bon)"] = timed(
        lambda: cached_generate(model, requests, decoding, cache))
    generations: list = []
    stages["cache lookups (w-bon)"] = timed(
        lambda: generations.extend(cached_generate(model, requests, decoding, cache)))
    texts = [c.text for g in generations for c in g.candidates]
    stages["parse alone (w-bon's 5 beams, parse_verdict)"] = timed(
        lambda: [parse_verdict(text, dataset.labels) for text in texts])
    results: list = []
    stages["parse + combine (w-bon, 5 beams)"] = timed(
        lambda: results.extend(strategy.result(r.item_id, g, dataset.labels, config, None)
                               for r, g in zip(requests, generations)))
    stages.update(evidence_stages(items, results))
    cache.close()
    shutil.rmtree(folder)
    print(f"\nstages alone, {n} items, items/s:")
    for what, seconds in stages.items():
        print(f"  {what:48} {n / seconds:10,.0f}")


def clip_stages(dataset, cache, prompt: str) -> tuple[dict[str, float], list]:
    """Seconds of each way of reading the clips and of preparing chunks, alone; and the
    dataset's requests with their audio in memory, for the later stages."""
    from harness.data.arena import ARENA
    from harness.data.audio import read_audio
    from harness.data.clips import first_sight, read_facts
    from harness.strategies._stream import chunks

    items = list(dataset)
    stages = {
        "hash + header alone": timed(lambda: _each(read_facts, items)),
        "decode alone (16-bit WAV to float32)": timed(
            lambda: _each(lambda path: read_audio(path, out=ARENA.take), items)),
        "first sight (hash, header, samples: one read)": timed(
            lambda: _each(lambda path: first_sight(path, out=ARENA.take), items)),
    }

    def drained(needed: bool, from_cache) -> float:
        return timed(lambda: _drain(chunks(dataset, lambda item: prompt,
                                           lambda rs: [needed] * len(rs), from_cache)))

    fresh_state()
    stages["chunks, cold (hash + decode in the background)"] = drained(True, cache)
    stages["chunks, memo known, no audio needed"] = drained(False, None)
    fresh_state()  # as a new process: each clip's hash from the cache's rows, nothing read
    stages["chunks, a rerun (clip rows from the cache)"] = drained(False, cache)
    requests = [r.with_audio() for c in chunks(dataset, lambda item: prompt,  # audio in memory
                                                lambda rs: [False] * len(rs), None)
                for r in c.requests]
    return stages, requests


def evidence_stages(items, results) -> dict[str, float]:
    """Seconds to build and write each item's evidence line (orjson, as a cell does), and to
    write the same lines with the standard library's encoder, for comparison."""
    import numpy as np

    from harness.record.json_line import _plain, json_line
    from harness.runner.evidence import item_evidence

    lines: list = []
    level = np.zeros(len(items), dtype=int)
    out = {"evidence lines built (w-bon)": timed(
        lambda: lines.extend(item_evidence(items, results, level)))}
    out["evidence lines written (orjson)"] = timed(lambda: [json_line(line) for line in lines])
    plain = [_plain(line) for line in lines]
    out["the same, json.dumps (for comparison)"] = timed(
        lambda: [json.dumps(line, allow_nan=False) for line in plain])
    return out


CONSUMER_US = 300  # an item's own work in a multi-candidate cell on the 2-core machine, about


def _spin(seconds: float) -> None:
    """Compute in Python (holding the interpreter's lock) for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def reader_beside_a_consumer(dataset, per_item: float = CONSUMER_US * 1e-6) -> None:
    """A cold run's chunks (each clip hashed and decoded on the reader's thread) taken by a
    consumer that spends ``per_item`` on each chunk's items, either waiting with the
    interpreter's lock let go (a GPU's caller) or computing in Python (the instant model's cell):
    the whole time and the consumer's wait for its next chunk, the median of :data:`REPEATS`."""
    print(f"\nthe clip reader beside its consumer ({len(dataset)} items, new clips), the consumer "
          f"taking {per_item * 1e6:.0f} us an item; median of {REPEATS} runs:")
    for how, take in (("waiting, the lock let go", time.sleep), ("computing in Python", _spin)):
        runs = sorted(_read_beside(dataset, take, per_item) for _ in range(REPEATS))
        total, waited = runs[len(runs) // 2]
        print(f"  consumer {how:26} {total * 1e3:6.0f} ms in all, {waited * 1e3:5.0f} ms of it "
              "waiting for clips")
    print("  the reader's thread takes the interpreter's lock back after each read and decode: "
          "a consumer computing in Python holds it, so the reader mostly reads while the "
          "consumer waits")


def _read_beside(dataset, take, per_item: float) -> tuple[float, float]:
    """Seconds for a cold run's chunks beside a consumer, and the consumer's wait in them."""
    from harness.strategies._stream import chunks

    fresh_state()
    ahead = chunks(dataset, lambda item: "", lambda requests: [True] * len(requests), None)
    start, waited = time.perf_counter(), 0.0
    while True:
        asked = time.perf_counter()
        chunk = next(ahead, None)
        waited += time.perf_counter() - asked
        if chunk is None:
            return time.perf_counter() - start, waited
        take(per_item * len(chunk.ids))
        del chunk


WAITS = (0.0, 200e-6, 1000e-6)  # seconds a request: the instant model, then 5,000 and 1,000 utt/s


def beside_a_model(dataset, work: Path, strategies=("base", "w-bon")) -> None:
    """A cold whole cell with a model that waits per request off the interpreter's lock (as on a
    GPU): what the harness adds to the model's own time, the median of :data:`REPEATS` runs."""
    from bench.instant_model import WaitingModel

    print(f"\na cold whole cell ({len(dataset)} items, new clips) beside a model that waits per "
          "request with the interpreter's lock let go, as a GPU's caller does; median of "
          f"{REPEATS} runs:")
    for name in strategies:
        for wait in WAITS:
            model = WaitingModel(dataset.labels, wait)
            runs = sorted(_cold_cell(model, dataset, name, work) for _ in range(REPEATS))
            seconds, waited = runs[len(runs) // 2]
            print(f"  {name:8} model {wait * 1e6:5.0f} us a request: {len(dataset) / seconds:7,.0f} "
                  f"utt/s; the model waited {waited * 1e3:6.0f} ms, the harness added "
                  f"{(seconds - waited) * 1e3:4.0f} ms")


def _cold_cell(model, dataset, name: str, work: Path) -> tuple[float, float]:
    """Seconds for a whole cell from nothing (memo empty, new cache), and the model's wait."""
    model.waited = 0.0
    return cold_cell(model, dataset, name, work)[0], model.waited


def cold_cell(model, dataset, name: str, work: Path) -> tuple[float, float, float]:
    """A whole cell from nothing (memo empty, new cache), its record written: wall seconds, the
    process's CPU seconds (every thread) and the calling thread's."""
    from harness.cache import GenerationCache
    from harness.record import write_record
    from harness.runner.evaluate import evaluate

    folder = Path(tempfile.mkdtemp(dir=work))
    fresh_state()
    cache = GenerationCache(folder / "generations.sqlite")
    wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    write_record(evaluate(model, dataset, name, verifier=model, cache=cache), folder / "run")
    wall, cpu, own = (time.perf_counter() - wall, time.process_time() - cpu,
                      time.thread_time() - own)
    cache.close()
    shutil.rmtree(folder)
    return wall, cpu, own


def peak_memory(work: Path, sizes: list[int]) -> None:
    print("\npeak resident memory of one cold w-bon cell (evaluate + record written), a fresh "
          "process each: the whole process (corpus loading included), and while the cell ran:")
    peaks = {}
    for size in sizes:
        root = corpus_under(work, size)
        out = subprocess.run([sys.executable, "-m", "bench.overhead", "--child", str(root),
                              "--work", str(work)], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        peaks[size] = result
        print(f"  {size:7,} items: {result['peak_mib']:5.0f} MiB peak, while the cell ran "
              f"{result['cell_peak_mib']:5.0f} MiB; {result['rate']:6,.0f} utt/s for the cell")
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        for key, what in (("peak_mib", "whole process"), ("cell_peak_mib", "while the cell ran")):
            print(f"  ratio {large:,} / {small:,} items, {what}: "
                  f"{peaks[large][key] / peaks[small][key]:.2f}x (target <= 1.5x)")


def peak_mib() -> float:
    """This process's peak resident memory: /proc's VmHWM (``ru_maxrss`` would report the
    parent's size at the fork, which Linux keeps across exec), else ``ru_maxrss``."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start the peak again from the present size (Linux: /proc/self/clear_refs, 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(root: Path, work: Path) -> None:
    """One cold w-bon cell on ``root``; prints, as JSON, the peak RSS of the whole process and of
    while the cell ran (the corpus loaded already), and the cell's rate."""
    from harness.cache import GenerationCache
    from harness.data import load_dataset
    from harness.record import write_record
    from harness.runner.evaluate import evaluate

    dataset = load_dataset("msp_podcast", root)
    model = InstantModel(dataset.labels)
    folder = Path(tempfile.mkdtemp(dir=work))
    cache = GenerationCache(folder / "generations.sqlite")
    loaded = peak_mib()
    reset_peak()
    seconds = timed(lambda: write_record(evaluate(model, dataset, "w-bon", cache=cache),
                                         folder / "run"))
    cache.close()
    shutil.rmtree(folder)
    print(json.dumps({"peak_mib": max(loaded, peak_mib()), "cell_peak_mib": peak_mib(),
                      "rate": len(dataset) / seconds}))


def _sizes(text: str) -> list[int]:
    """``--rss``: corpus sizes of at least one item each."""
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"corpus sizes must be 1 or more, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--rss", type=_sizes, default="1000,20000",
                        help="corpus sizes for peak memory, comma-separated ('' for none)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "harness-overhead")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.child, args.work)
        return
    from harness.data import load_dataset

    dataset = load_dataset("msp_podcast", corpus_under(args.work, args.items))
    with speed_noted():
        strategy_rates(dataset, args.work)
        stage_rates(dataset, args.work)
        reader_beside_a_consumer(dataset)
        beside_a_model(dataset, args.work)
        if args.rss:
            peak_memory(args.work, args.rss)


if __name__ == "__main__":
    main()
