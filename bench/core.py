"""Core-library throughput: the parser on 100k mixed model outputs, and every metric on 100k items.

Targets on the 2-core development machine: parsing >= 50,000 outputs/s, and <= 10 ms for each
100 kB adversarial answer (a fixed set, then 300 random floods of dictionary pieces and 300 of
an answer's pieces); all metrics over 100k items x 8 classes <= 0.5 s. Run:
``python bench/core.py``.
"""

from __future__ import annotations

import json
import time

import numpy as np

from harness import metrics
from harness.parsing import parse_distribution

LABELS = ["Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral"]
N = 100_000


def mixed_outputs(n: int, seed: int = 0) -> list[str]:
    """Outputs in the proportions models produce them: mostly JSON, some prose, some garbage."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = rng.dirichlet(np.ones(8))
        as_json = json.dumps({k: round(float(v), 3) for k, v in zip(LABELS, p)})
        kind = i % 20
        if kind < 12:
            out.append(as_json)
        elif kind < 14:
            out.append("The tone is tense and the pitch rises; anger with some contempt.\n"
                       f"Final answer: {as_json}")
        elif kind < 16:
            out.append(f"```json\n{as_json}\n```")
        elif kind == 16:
            out.append("['angry', 'contempt']")
        elif kind == 17:
            out.append(str([round(float(v), 2) for v in p]))
        elif kind == 18:
            out.append("The speaker sounds sad.")
        else:
            out.append(["0.54", "I am not sure.", '{"Angry": -1}', ""][i % 4])
    return out


def parse_timed(n: int = N) -> tuple[float, int]:
    """Seconds to parse ``n`` mixed outputs in one pass, and how many were valid (also the
    machine's speed probe, :mod:`bench.machine_speed`)."""
    outputs = mixed_outputs(n)
    parse_distribution(outputs[0], LABELS)  # warm the label index
    start = time.perf_counter()
    parsed = [parse_distribution(text, LABELS) for text in outputs]
    return time.perf_counter() - start, sum(p.valid for p in parsed)


def bench_parser() -> float:
    elapsed, valid = parse_timed()
    rate = N / elapsed
    print(f"parse: {N:,} mixed outputs in {elapsed:.3f} s = {rate:,.0f} outputs/s "
          f"({valid / N:.1%} valid; target >= 50,000/s)")
    return rate


def adversarial_outputs(size: int = 100_000) -> dict[str, str]:
    """100 kB answers built to make a backtracking parser take seconds (whitespace runs,
    unterminated keys, long word runs, nested brackets and braces, separator floods), or one that
    reads every dictionary and list take tens of milliseconds (thousands of small ones)."""
    return {
        "whitespace run": " " * size + "x",
        "newlines then a sentence": "\n" * size + "I think the speaker is sad.",
        "unterminated key": '{"Neutral state": 0.2, "Ang' + " " * size + "}",
        "long word run": ("lorem ipsum dolor " * (size // 18 + 1))[:size],
        "nested brackets": "[" * (size // 2) + "]" * (size // 2),
        "nested braces": "{" * (size // 2) + "}" * (size // 2),
        "open braces and words": "{a " * (size // 3),
        "key without a value": '{"Anger": ' + " " * size + "}",
        "fenced lone number": "```json\n" + " " * size + "0.5",
        "key runs before a colon": "{Anger" + " _" * (size // 2) + ": 1}",
        "spaces before a key": "{" + " " * size + "x: 1}",
        "separator flood": "{" + "=1" * (size // 2) + "}",
        "spaced separator flood": "{" + ": 1 " * (size // 4) + "}",
        "separators after quotes": "{" + "'=" * (size // 2) + "}",
        "key symbols before separators": "{" + "-=" * (size // 2) + "}",
        "many small dictionaries": ("{a: 1}" * (size // 6 + 1))[:size],
        "many empty dictionaries": "{}" * (size // 2),
        "a label before many dictionaries": '{"sad": 1}' + "{a: 1}" * (size // 6),
        "many lists": "[a]" * (size // 3),
        "many empty lists": "[]" * (size // 2),
    }


FLOOD_PIECES = ["a", "anger", "Sad", "é", "৴", " ", "\t", "_", "-", "/", ":", "=", "'", '"', "0.5",
                "1", "nan", "inf", ",", "%", "."]


ANSWER_PIECES = FLOOD_PIECES + ["{", "}", "[", "]", "happy", "sad", "neutral state", "no",
                               "emotion", "no emotion", "Neutral", "joy", "'sad'", '"happy"', "\n",
                               "```json", "0.", "1e", "e5", "[0.5,", "{a:", "x"]


def random_floods(count: int = 300, size: int = 100_000, seed: int = 7) -> list[str]:
    """``count`` answers of ``size`` characters, each one to six dictionary pieces repeated
    (``{a:inf"a:inf"...``), three in ten after a real pair, a NaN, a letter or a numeral."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        unit = "".join(rng.choice(FLOOD_PIECES) for _ in range(rng.randint(1, 6)))
        body = "{" + (unit * (size // len(unit) + 1))[:size] + "}"
        if rng.random() < 0.3:
            body = "{" + rng.choice(["a: 1, ", "anger: nan ", "é", "a৴: 2"]) + body[1:]
        out.append(body)
    return out


def random_answer_floods(count: int = 300, size: int = 100_000, seed: int = 1) -> list[str]:
    """``count`` answers of ``size`` characters, each one to eight pieces of an answer repeated
    (the dictionary pieces, brackets, braces, label words and spellings of several words, code
    fences), three in ten after and three in ten before a dictionary, a list or a word."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        unit = "".join(rng.choice(ANSWER_PIECES) for _ in range(rng.randint(1, 8)))
        text = (unit * (size // len(unit) + 1))[:size]
        if rng.random() < 0.3:
            text = rng.choice(['{"sad": 1}', "[0.1, 0.9]", "happy ", "{"]) + text
        if rng.random() < 0.3:
            text += rng.choice(['{"sad": 1}', "[0.1, 0.9]", " happy", "}", "]"])
        out.append(text)
    return out


def bench_floods() -> float:
    """Each random flood's parse, the best of two: their median, 90th centile and slowest; for
    the floods of dictionary pieces, then for those of an answer's pieces."""
    slowest = 0.0
    for what, texts in (("dictionary pieces (seed 7)", random_floods()),
                        ("an answer's pieces (seed 1)", random_answer_floods())):
        seconds = []
        for text in texts:
            best = float("inf")
            for _ in range(2):
                start = time.perf_counter()
                parse_distribution(text, LABELS)
                best = min(best, time.perf_counter() - start)
            seconds.append(best)
        ms = np.sort(np.array(seconds) * 1e3)
        print(f"parse floods: {len(ms)} random 100 kB floods of {what}: median "
              f"{np.median(ms):.2f} ms, 90th centile {ms[int(0.9 * len(ms))]:.2f} ms, slowest "
              f"{ms[-1]:.2f} ms, {int((ms > 10).sum())} over 10 ms (target <= 10 ms each)")
        slowest = max(slowest, float(ms[-1]))
    return slowest


def bench_adversarial() -> float:
    """The slowest of the adversarial answers (target: <= 10 ms each)."""
    worst = 0.0
    for name, text in adversarial_outputs().items():
        start = time.perf_counter()
        parse_distribution(text, LABELS)
        elapsed = time.perf_counter() - start
        worst = max(worst, elapsed)
        print(f"parse adversarial: {name}, {len(text):,} chars in {elapsed * 1e3:.2f} ms")
    print(f"parse adversarial: slowest {worst * 1e3:.2f} ms (target <= 10 ms each)")
    return worst


def bench_metrics() -> float:
    rng = np.random.default_rng(1)
    votes = rng.integers(0, 4, size=(N, 8)).astype(float)
    votes[votes.sum(axis=1) == 0, 0] = 1.0
    true = votes / votes.sum(axis=1, keepdims=True)
    pred = rng.dirichlet(np.ones(8), size=N)
    start = time.perf_counter()
    scores = metrics.per_item(true, pred)
    h = metrics.entropy(true)
    cls = metrics.classification(votes, pred)
    index, _ = metrics.entropy_bins(h, 5)
    for values in scores.values():
        metrics.binned_medians(values, index, 5)
    elapsed = time.perf_counter() - start
    print(f"metrics: js, jsd, bc, r2, entropy, acc, macro-F1, entropy-bin medians over "
          f"{N:,} items x 8 classes in {elapsed:.3f} s (target <= 0.5 s); "
          f"mean js {scores['js'].mean():.4f}, acc {cls['acc']:.4f}")
    start = time.perf_counter()
    metrics.bootstrap_ci(scores["js"], n_resamples=1000)
    print(f"bootstrap: 1,000 resamples of the JS mean over {N:,} items in "
          f"{time.perf_counter() - start:.2f} s (not part of the target)")
    return elapsed


if __name__ == "__main__":
    bench_parser()
    bench_adversarial()
    bench_floods()
    bench_metrics()
