import pytest

from bench.intervals import accuracy_coverage, main


def test_the_script_prints_coverage_and_false_marks_for_each_way_of_taking_intervals(capsys):
    main(["--items", "8", "--draws", "30"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["8 items, expanded", "8 items, percentile"] * 2
    accuracy, means = lines[:2], lines[2:]
    for line in accuracy:
        held = line.split("held a true accuracy of 0.5 / 0.8 / 0.9 / 0.95 / 0.98: ")[1]
        assert len(held.split(" / ")) == 5 and held.endswith("% (exactly)")
    for line in means:
        held, marked = line.split(": 95% CIs held the mean ")[1].split("; null changes marked * ")
        assert held.startswith("js ") and "acc " in held and held.endswith(")")
        assert marked.startswith("js ") and "r2 " in marked and "acc" not in marked
    shares = [float(line.split("js ")[1].split("%")[0]) for line in means]
    assert shares[0] >= shares[1]  # the expanded interval is the wider: it holds the mean as often


def test_accuracy_coverage_is_the_binomial_sum():
    """Two items at a true accuracy of 0.5: Wilson's interval for 0, 1 or 2 right answers holds
    0.5 in each case; the bootstrap's for 0 or 2 right is a point, [0, 0] or [1, 1]."""
    assert accuracy_coverage(2, 0.5, "expanded") == pytest.approx(1.0)
    assert accuracy_coverage(2, 0.5, "percentile") == pytest.approx(0.5)


def test_the_script_prints_the_false_marks_of_sparse_updates(capsys):
    main(["--items", "30", "--draws", "3", "--changed", "4"])
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("30 items of which 4 changed, 3 null updates, expanded: null changes "
                           "marked * js 0.0%, bc 0.0%, r2 0.0%")  # fewer than 6: never marked
