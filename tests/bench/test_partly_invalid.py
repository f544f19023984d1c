"""The run the field fuzzer reads for cells with invalid items (bench/partly_invalid.py)."""

from bench.partly_invalid import partly_invalid_run
from harness.record import read_summary


def test_the_partly_invalid_run_has_answers_without_a_distribution_under_each_reading(tmp_path):
    cells = partly_invalid_run(tmp_path) / "cells"
    left, guessed = (read_summary(cells / f"{name}-crema_d-base.json").metrics
                     for name in ("partly", "guessing"))
    assert 0 < left.n_valid == guessed.n_valid < left.n_items and left.errors == guessed.errors > 0
    assert left.guessed == 0 and guessed.guessed == left.n_items - left.n_valid - left.errors > 0
    assert (cells / "uniform-crema_d-base.json").is_file()
    assert partly_invalid_run(tmp_path) == cells.parent  # made once under its --work
