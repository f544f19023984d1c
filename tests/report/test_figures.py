"""The report's figures: one PNG per model and corpus, drawn from records with or without the
medians' intervals; what a panel draws (each strategy's medians, their bars, the levels' counts)."""

import dataclasses

import pytest

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
    assert build_report(run).bad_cells == ()  # built again over its own figures
    import json

    text = (run / "report.json").read_text()
    cells = json.loads(text)["cells"]
    assert len(cells) == 2 and not any("items" in cell for cell in cells)  # summaries only
    # its keys in order, so that two runs' reports compare line by line
    assert text == json.dumps(json.loads(text), indent=1, sort_keys=True)


def test_a_panel_draws_each_strategys_medians_at_the_levels_with_their_intervals_as_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from harness.report.build import _panel

    cells = [harness.evaluate(model, "crema_d", n_resamples=10) for model in ("uniform", "label-prior")]
    cells = [dataclasses.replace(c, strategy=s) for c, s in zip(cells, ("base", "w-bon"))]
    fig, ax = plt.subplots()
    _panel(ax, cells, "bc")
    bins = cells[0].metrics.bins
    edges, centres = bins["edges"], np.convolve(bins["edges"], [0.5, 0.5], "valid")
    width = (edges[-1] - edges[0]) / (len(edges) - 1)
    lines = [line for line in ax.lines if not line.get_label().startswith("_")]  # not the caps
    assert [line.get_label() for line in lines] == ["base", "w-bon"]
    for line, cell, shift in zip(lines, cells, (-width / 8, width / 8)):  # side by side
        medians = [np.nan if v is None else v for v in cell.metrics.bins["bc"]]
        np.testing.assert_allclose(line.get_ydata(), medians)
        np.testing.assert_allclose(line.get_xdata(), centres + shift)
    bars = [c for c in ax.collections if len(c.get_segments())]  # each with a CI: low to high
    ends = {(round(s[0][1], 9), round(s[1][1], 9)) for bar in bars for s in bar.get_segments()}
    intervals = {tuple(round(end, 9) for end in ci) for cell in cells
                 for ci in cell.metrics.bins["bc_ci"] if ci is not None}
    assert ends == intervals and intervals
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{c:.2f}\nlevel {b}\nn={n}"
                     for b, (c, n) in enumerate(zip(centres, bins["counts"]), 1)]
    assert ax.get_title() == "median BC"
    plt.close(fig)


def test_an_interval_is_drawn_from_its_ends_and_one_that_cannot_be_drawn_is_left_out(tmp_path):
    """Found by setting a cell file's numbers to odd ones (python -m bench.fuzz_files numbers):
    an interval that did not hold its median (as a percentile interval need not) crashed the
    figures, drawn as errors around the median; a null or reversed one is left out."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.build import _panel

    cell = harness.evaluate("label-prior", "crema_d", n_resamples=10)
    bins = dict(cell.metrics.bins)
    levels = [i for i, v in enumerate(bins["bc"]) if v is not None]
    assert len(levels) == 5
    odd = [[bins["bc"][levels[0]] + 0.1, bins["bc"][levels[0]] + 0.2],  # above its median
           [None, 0.5], [0.6, 0.2],  # a null end; reversed
           [bins["bc"][levels[3]]] * 2,  # no width: every resample's median the same, drawn
           [-math.inf, 0.5]]
    bins["bc_ci"] = odd
    cell = dataclasses.replace(cell, metrics=dataclasses.replace(cell.metrics, bins=bins))
    fig, ax = plt.subplots()
    _panel(ax, [cell], "bc")
    bars = [c for c in ax.collections if len(c.get_segments())]
    ends = [(round(s[0][1], 9), round(s[1][1], 9)) for bar in bars for s in bar.get_segments()]
    assert ends == [tuple(round(end, 9) for end in odd[k]) for k in (0, 3)]
    plt.close(fig)
    write_record(cell, tmp_path / "run")
    assert build_report(tmp_path / "run").bad_cells == ()
    assert (tmp_path / "run" / "figures" / "label-prior-crema_d.png").is_file()


def test_a_groups_figure_is_the_same_drawn_alone_or_after_another_groups():
    """The figure is drawn again for each group: nothing of the group before stays on it."""
    from harness.report.build import _figures

    first = harness.evaluate("uniform", "crema_d", n_resamples=10)
    second = harness.evaluate("label-prior", "crema_d", n_resamples=10)
    together, alone = _figures([first, second]), _figures([second])
    assert set(together) == {"uniform-crema_d.png", "label-prior-crema_d.png"}
    assert together["label-prior-crema_d.png"] == alone["label-prior-crema_d.png"]
    assert _figures([]) == {}


@pytest.mark.filterwarnings("ignore:No artists with labels")  # the panels drawn here are empty
def test_each_figure_has_a_panel_per_metric(monkeypatch):
    from harness.report import build

    drawn = []
    monkeypatch.setattr(build, "_panel", lambda ax, group, metric: drawn.append(
        (group[0].model, metric)))
    build._figures([harness.evaluate(m, "crema_d", n_resamples=10) for m in ("uniform", "label-prior")])
    assert drawn == [(m, metric) for m in ("uniform", "label-prior") for metric in ("js", "bc", "r2")]
