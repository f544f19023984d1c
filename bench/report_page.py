"""How fast report.html opens for a paper-sized run: 8 strategies over 24,770 items.

Synthetic records and per-item evidence (five candidates per item with their texts, α, verifier
replies and weights, as a beam strategy writes them) for one model on three corpora of 10,039,
7,292 and 7,439 items (24,770 in all), the report built from them, then the page opened from
file:// in headless Chromium (Debian's chromium and chromium-driver):

    python -m bench.report_page            # target: first usable view <= 3 s on 2 cores

It prints the page's size, the build time, the time to the first usable view (tables and the
cell list up: the page's own script has run), to the whole document, and to the largest cell's
item list.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.record import (
    CellMetrics,
    CellRecord,
    Estimate,
    ItemEvidence,
    ItemRecord,
    write_record,
)
from harness.report.build import build_report

CORPORA = {"iemocap": 10_039, "msp_podcast": 7_292, "crema_d": 7_439}
STRATEGIES = ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n")
LABELS = ("Neutral", "Happy", "Angry", "Sad")


def synthetic_cell(dataset: str, strategy: str, n: int, rng: np.random.Generator) -> CellRecord:
    votes = rng.integers(0, 4, size=(n, 4)) + np.eye(4)[rng.integers(0, 4, n)]
    human = votes / votes.sum(axis=1, keepdims=True)
    probs = rng.dirichlet(np.ones(4), size=n)
    items, evidence = [], []
    for i in range(n):
        item_id = f"{dataset}_{i:06d}"
        p = [round(float(x), 4) for x in probs[i]]
        answer = json.dumps(dict(zip(LABELS, p)))
        scores = {"js": float(rng.uniform(0.1, 0.7)), "bc": float(rng.uniform(0.5, 1)),
                  "r2": float(rng.uniform(0, 1)), "acc": float(rng.integers(0, 2))}
        items.append(ItemRecord(item_id, tuple(p), "json_dict", scores=scores))
        evidence.append({
            "id": item_id, "transcript": "a transcript of about the usual length for an utterance",
            "audio": f"/nonexistent/{item_id}.wav", "votes": votes[i].tolist(),
            "human": human[i].tolist(), "entropy": float(rng.uniform(0, 2)),
            "level": int(rng.integers(0, 5)), "probs": p, "rule": "json_dict", "reason": "",
            "error": None, "notes": [], "scores": scores,
            "candidates": [{"text": answer, "logprob": -3.6 - k, "n_tokens": 30, "rule": "json_dict",
                            "valid": True, "reason": "", "probs": p, "verifier_reply": "0.9",
                            "verifier_score": 0.9, "weight": 0.2, "chosen": k == 0}
                           for k in range(5)]})
    metrics = CellMetrics(n, n, 1.0, {k: Estimate(0.5, (0.49, 0.51)) for k in ("js", "bc", "r2", "acc",
                                                                               "f1")})
    return CellRecord(f"m-{dataset}-{strategy}", "m", dataset, strategy, LABELS, metrics, 1.0, 0.0,
                      tuple(items), {}, evidence=ItemEvidence({"labels": list(LABELS),
                                                                "prompt_templates": {}}, tuple(evidence)))


def open_page(page: Path) -> dict[str, float]:
    from selenium.webdriver.common.by import By

    from tests.report.browser import headless_chromium  # python -m from the repository root

    out = {}
    with headless_chromium(page_load_strategy="none") as driver:
        start = time.perf_counter()
        driver.get(page.as_uri())
        while not driver.execute_script("return window.harnessReady === true"):
            time.sleep(0.01)
        out["first usable view"] = time.perf_counter() - start
        while driver.execute_script("return document.readyState") != "complete":
            time.sleep(0.01)
        out["whole document"] = time.perf_counter() - start
        driver.find_element(By.ID, "tab-cells").click()
        start = time.perf_counter()
        driver.find_element(By.CSS_SELECTOR, "#cell-list tbody tr[data-cell='m-iemocap-w-bon']").click()
        while not driver.execute_script("return document.querySelectorAll('#item-list tbody tr').length"):
            time.sleep(0.01)
        out["open the largest cell (10,039 items)"] = time.perf_counter() - start
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        start = time.perf_counter()
        for dataset, n in CORPORA.items():
            for strategy in STRATEGIES:
                write_record(synthetic_cell(dataset, strategy, n, rng), run)
        written = time.perf_counter() - start
        start = time.perf_counter()
        build_report(run)
        built = time.perf_counter() - start
        page = run / "report.html"
        items = sum(p.stat().st_size for p in (run / "cells").glob("*.items.jsonl"))
        print(f"{len(CORPORA) * len(STRATEGIES)} cells, {sum(CORPORA.values()) * len(STRATEGIES):,} "
              f"items ({items / 2**20:.0f} MiB of items files) written in {written:.1f} s; report "
              f"built in {built:.1f} s; report.html {page.stat().st_size / 2**20:.1f} MiB")
        for name, seconds in open_page(page).items():
            print(f"{name}: {seconds:.2f} s" + (" (target <= 3 s)" if name == "first usable view" else ""))


if __name__ == "__main__":
    main()
