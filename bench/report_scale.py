"""How long ``python -m harness.report`` takes, and how much memory, for a paper-sized grid.

    python -m bench.report_scale                       # 222 cells x 10,000 items
    python -m bench.report_scale --cells 222 --items 1000

Synthetic cell records (9 models x 3 corpora x 8 strategies, plus 2 chance baselines x 3
corpora: 222 cells), each with ``--items`` items carrying their per-item scores, as a run writes
them (records only: no per-item evidence files, whose embedding in report.html
``bench/report_page.py`` measures). The report is then built in a fresh process, which prints
the time of each stage and its peak resident memory. Target (this project's issue 18, 2 cores):
222 x 10,000 in <= 10 s and <= 500 MiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STRATEGIES = ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n")
CORPORA = {"iemocap": ("Neutral state", "Happiness", "Anger", "Sadness"),
           "msp_podcast": ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt",
                           "Neutral"),
           "crema_d": ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness")}


def cells(count: int) -> list[tuple[str, str, str]]:
    """(model, dataset, strategy) of the first ``count`` cells of the grid described above."""
    grid = [(f"model-{m}", d, s) for m in range(9) for d in CORPORA for s in STRATEGIES]
    grid += [(chance, d, "base") for chance in ("uniform", "prior") for d in CORPORA]
    return grid[:count]


def write_cell(run: Path, model: str, dataset: str, strategy: str, n: int,
               rng: np.random.Generator) -> None:
    from harness.record import CellMetrics, CellRecord, Estimate, ItemRecord, write_record

    labels = CORPORA[dataset]
    probs = rng.dirichlet(np.ones(len(labels)), size=n).round(4)
    scores = rng.uniform(0, 1, size=(n, 5))
    items = tuple(ItemRecord(f"{dataset}_{i:06d}", tuple(probs[i].tolist()), "json_dict",
                             scores=dict(zip(("js", "jsd", "bc", "r2", "acc"), scores[i].tolist())))
                  for i in range(n))
    estimate = {k: Estimate(0.5, (0.49, 0.51)) for k in ("js", "jsd", "bc", "r2", "acc", "f1")}
    bins = {"method": "width", "edges": [0, 0.4, 0.8, 1.2, 1.6, 2.0],
            "counts": [n // 5] * 5, **{k: rng.uniform(0, 1, 5).tolist() for k in ("js", "bc", "r2")}}
    metrics = CellMetrics(n, n, 1.0, estimate, bins=bins)
    meta = {"dataset": {"name": dataset, "n_items": n, "manifest": "m", "options": {}},
            "model": {"name": model, "revision": "r"}}
    write_record(CellRecord(f"{model}-{dataset}-{strategy}", model, dataset, strategy, labels,
                            metrics, 1.0, 0.0, items, meta), run)


def child(run: Path) -> None:
    """Build the report of ``run``, timing each stage; print the times and peak RSS as JSON."""
    from harness.report import build

    stages: dict[str, float] = {}
    real = {name: getattr(build, name) for name in ("load_cells", "_figures", "render_html")}

    def timed(name):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real[name](*args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - start
        return call

    for name in real:
        setattr(build, name, timed(name))
    start = time.perf_counter()
    build.build_report(run)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"total": total, "stages": stages, "peak_mib": peak}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=222)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return
    from bench.machine_speed import speed_noted

    with speed_noted():
        build_at_scale(args.cells, args.items)


def build_at_scale(n_cells: int, n_items: int) -> None:
    """Write ``n_cells`` records of ``n_items`` items, then time a report over them in a process
    of its own."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        start = time.perf_counter()
        for model, dataset, strategy in cells(n_cells):
            write_cell(run, model, dataset, strategy, n_items, rng)
        size = sum(p.stat().st_size for p in (run / "cells").iterdir())
        print(f"{n_cells} cells x {n_items:,} items written in {time.perf_counter() - start:.0f} s "
              f"({size / 2**20:,.0f} MiB of records)")
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bench.report_scale", "--child", str(run)],
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        result = json.loads(out.stdout.strip().splitlines()[-1])
        stages = ", ".join(f"{k.strip('_')} {v:.1f} s" for k, v in result["stages"].items())
        print(f"report built in {result['total']:.1f} s ({stages}); the process took {wall:.1f} s "
              f"and at most {result['peak_mib']:,.0f} MiB (target <= 10 s, <= 500 MiB)")


if __name__ == "__main__":
    main()
