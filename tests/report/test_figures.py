"""The report's figures: one PNG per model and corpus, drawn from records with or without the
medians' intervals."""

import dataclasses

import harness
from harness.record import write_record
from harness.report import build_report


def test_a_figure_per_model_and_corpus_with_or_without_the_medians_intervals(tmp_path):
    run = tmp_path / "run"
    prior = harness.evaluate("label-prior", "crema_d", n_resamples=10)
    assert any(prior.metrics.bins["js_ci"])  # a level with 6 items or more has its bars
    old_bins = {k: v for k, v in prior.metrics.bins.items() if not k.endswith("_ci")}
    older = dataclasses.replace(  # a record from before the intervals were kept
        harness.evaluate("uniform", "crema_d", n_resamples=10), model="older", cell="older-crema_d-base")
    older = dataclasses.replace(older, metrics=dataclasses.replace(older.metrics, bins=old_bins))
    for record in (prior, older):
        write_record(record, run)
    built = build_report(run)
    assert built.bad_cells == ()
    for name in ("label-prior-crema_d.png", "older-crema_d.png"):
        assert (run / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
