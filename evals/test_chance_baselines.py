"""The chance-baseline cells of the benchmark grid, ``<model>-<dataset>-<strategy>``.

The full grid (models x datasets x strategies, gating, the aggregated report) is built by the
evals-grid work; these cells already run the embedded default end to end: load the corpus
(``*_ROOT`` or the bundled fixture), predict, score, and write the cell's JSON.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from harness import baselines, metrics
from harness.data import CORPORA, DataError, load_dataset

CELLS = [(m, d) for m in baselines.BASELINES for d in CORPORA]
REPORT_DIR = Path(os.environ.get("HARNESS_REPORT_DIR", "reports/latest"))


@pytest.mark.parametrize(("model", "dataset_name"), CELLS,
                         ids=[f"{m}-{d}-base" for m, d in CELLS])
def test_cell(model, dataset_name):
    try:
        dataset = load_dataset(dataset_name)
    except DataError as exc:
        pytest.skip(f"{dataset_name}: {exc} (set {CORPORA[dataset_name].env_var})")
    pred = baselines.predict(model, dataset)
    summary = metrics.summarize(dataset.votes, pred)
    cell = {"cell": f"{model}-{dataset_name}-base", "model": model, "dataset": dataset_name,
            "strategy": "base", "root": str(dataset.root),
            "manifest": dataset.manifest_hash(), "metrics": summary}
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / f"{cell['cell']}.json").write_text(json.dumps(cell, indent=2))
    assert summary["valid"] == 1.0
    assert 0.0 <= summary["js"]["mean"] <= np.sqrt(np.log(2))
    assert 0.0 <= summary["bc"]["mean"] <= 1.0
    # a prediction that is the same for every class carries no information about the classes
    if model == "uniform":
        assert summary["r2"]["mean"] == 0.0
