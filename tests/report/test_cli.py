"""``python -m harness.report``'s arguments and what it prints, in process (the commands'
results themselves: tests/report/test_compare_merge.py, through a real subprocess)."""

import os

import pytest

from harness.record import write_record
from harness.report.__main__ import main
from harness.report.stopped import mark_running
from tests.report.test_compare_merge import record


def _run(folder):
    write_record(record("m-d-s", lambda v: v / v.sum()), folder)
    return folder


def test_a_build_prints_its_results_then_where_it_wrote_them(tmp_path, capsys):
    run = _run(tmp_path / "run")
    assert main([str(run)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(f"report: {run / 'report.json'}\ntables: {run / 'tables.md'}\n"
                        f"page: {run / 'report.html'}\n")
    results = out[:out.index("report: ")]
    assert results.startswith("Items: d 40 items.") and "40/40" in results  # the results first


@pytest.mark.parametrize("alpha", ["abc", "0", "0.6", "-0.1", "nan"])
def test_a_gate_alpha_outside_0_to_one_half_is_refused(tmp_path, capsys, alpha):
    run = _run(tmp_path / "run")
    with pytest.raises(SystemExit) as refused:
        main(["compare", str(run), str(run), "--gate-alpha", alpha])
    assert refused.value.code == 2
    assert f"must be above 0 and at most 0.5, not {alpha!r}" in capsys.readouterr().err


@pytest.mark.parametrize("resamples", ["abc", "0", "2.5"])
def test_a_resample_count_that_is_not_a_whole_number_of_at_least_one_is_refused(
        tmp_path, capsys, resamples):
    run = _run(tmp_path / "run")
    with pytest.raises(SystemExit):
        main(["compare", str(run), str(run), "--resamples", resamples])
    assert f"must be a whole number of at least 1, not {resamples!r}" in capsys.readouterr().err


def test_the_gate_alpha_and_resamples_given_are_those_used(tmp_path, capsys, monkeypatch):
    import harness.report.compare as compare_module

    seen = {}
    real = compare_module.compare

    def spy(a, b, **kwargs):
        seen.update(kwargs)
        return real(a, b, **kwargs)

    monkeypatch.setattr(compare_module, "compare", spy)
    run = _run(tmp_path / "run")
    assert main(["compare", str(run), str(run), "--gate-alpha", "0.5", "--resamples", "20"]) == 0
    assert (seen["alpha"], seen["n_resamples"]) == (0.5, 20)
    assert main(["compare", str(run), str(run)]) == 0
    assert (seen["alpha"], seen["n_resamples"], seen["interval"]) == (0.05, 1000, "expanded")


def test_a_merge_needs_its_out_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["merge", str(_run(tmp_path / "run"))])
    assert refused.value.code == 2 and "--out" in capsys.readouterr().err


@pytest.mark.parametrize(("count", "said"), [
    (5, "holds runs (r1, r2, r3, r4, r5)"), (6, "holds runs (6 runs, the newest r6)")])
def test_a_folder_of_runs_names_five_and_counts_more(tmp_path, capsys, count, said):
    for n in range(1, count + 1):
        _run(tmp_path / f"r{n}")
    assert main([str(tmp_path)]) == 2
    assert said in capsys.readouterr().err


def test_view_opens_the_page_where_a_browser_is_and_only_prints_it_otherwise(
        tmp_path, capsys, monkeypatch):
    import webbrowser

    run, opened = _run(tmp_path / "run"), []
    monkeypatch.setattr(webbrowser, "get", lambda: object())
    monkeypatch.setattr(webbrowser, "open", opened.append)
    page = (run / "report.html").resolve()
    assert main(["view", str(run), "--no-open"]) == 0 and opened == []  # built, then printed
    assert main(["view", str(run)]) == 0 and opened == [page.as_uri()]
    assert capsys.readouterr().out.splitlines() == [str(page), str(page)]

    def no_browser():
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", no_browser)
    assert main(["view", str(run)]) == 0 and len(opened) == 1


def test_one_resample_is_allowed_and_a_file_given_for_a_run_is_named(tmp_path, capsys):
    run = _run(tmp_path / "run")
    assert main(["compare", str(run), str(run), "--resamples", "1"]) == 0
    capsys.readouterr()
    for given in (run / "cells" / "m-d-s.json", run / "cells"):  # a file; a folder of no run
        assert main([str(given)]) == 2
        assert capsys.readouterr().err == f"error: {given} has no cells/ folder\n"
    (tmp_path / "started").mkdir()
    mark_running(tmp_path / "started", 3, os.getpid())  # a run before its first cell's record
    assert main([str(tmp_path / "started")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'started'} has no cells/ folder: no "
                                       f"cell recorded (still running: process {os.getpid()} on "
                                       "this host)\n")
