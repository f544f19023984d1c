import numpy as np

from harness.data import load_dataset
from harness.grid import Cell
from harness.report.cell import run_cell, stratified_subsample, write_cell


def test_stratified_subsample_is_deterministic_and_spans_the_entropy_range():
    dataset = load_dataset("msp_podcast")
    sub = stratified_subsample(dataset, 7)
    assert len(sub) == 7 and sub.ids == stratified_subsample(dataset, 7).ids
    h_all = [it.entropy for it in dataset]
    h_sub = [it.entropy for it in sub]
    assert min(h_sub) == min(h_all) and max(h_sub) == max(h_all)
    assert stratified_subsample(dataset, None) is dataset


def test_a_chance_cell_record_and_its_file(tmp_path):
    dataset = load_dataset("crema_d")
    record = run_cell(Cell("label-prior", "crema_d", "base"), dataset, n_resamples=100)
    m = record["metrics"]
    assert m["valid"] == 1.0 and m["rules"] == {"chance": 26} and m["errors"] == 0
    assert sum(m["bins"]["counts"]) == 26 and len(m["bins"]["js"]) == 5
    assert record["meta"]["dataset"]["manifest"] == dataset.manifest_hash()
    assert len(record["items"]) == 26 and np.isclose(sum(record["items"][0]["probs"]), 1.0)
    path = write_cell(record, tmp_path)
    assert path == tmp_path / "cells" / "label-prior-crema_d-base.json" and path.is_file()
