"""A run in which a model gave no distribution on most items and failed on some: what the
report and ``compare`` meet in a cell with invalid items under each reading of them
(``StrategyConfig.invalid``), for ``python -m bench.fuzz_files fields --partly-invalid``."""

from __future__ import annotations

from pathlib import Path

import harness
from bench.instant_model import InstantModel
from harness.data import load_dataset
from harness.models.api import Candidate, Decoding, Generation, Request
from harness.record import write_record


def partly_invalid_run(work: Path) -> Path:
    """A run over CREMA-D's bundled items in which a model gave no distribution on most of them
    and failed on some: its base cell under each reading of those answers, ``partly`` (left
    out) and ``guessing`` (``invalid="uniform"``), and the uniform baseline's."""
    run = work / "partly-invalid"
    if not (run / "cells").is_dir():
        dataset = load_dataset("crema_d")
        for name, reading in (("partly", "left_out"), ("guessing", "uniform")):
            write_record(harness.evaluate(_PartlyAnswering(dataset.labels, name), dataset, "base",
                                          config={"invalid": reading}, n_resamples=200), run)
        write_record(harness.evaluate("uniform", dataset, "base", n_resamples=200), run)
    return run


class _PartlyAnswering(InstantModel):
    """:class:`~bench.instant_model.InstantModel` that answers one item in three, says it
    cannot tell on the others and fails on one in seven."""

    def _answer(self, request: Request, decoding: Decoding) -> Generation:
        seed = self._seed(request)
        if seed % 7 == 0:
            raise RuntimeError("the server went away")
        if seed % 3:
            return Generation((Candidate("I cannot tell.", 4, -1.0),))
        return super()._answer(request, decoding)
