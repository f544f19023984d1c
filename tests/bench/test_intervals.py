from bench.intervals import main


def test_the_script_prints_coverage_and_false_marks_for_each_way_of_taking_intervals(capsys):
    main(["--items", "8", "--draws", "30"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["8 items, expanded", "8 items, percentile"]
    for line in lines:
        held, marked = line.split(": 95% CIs held the mean ")[1].split("; null changes marked * ")
        assert held.startswith("js ") and "acc " in held and held.endswith(")")
        assert marked.startswith("js ") and "r2 " in marked and "acc" not in marked
    shares = [float(line.split("js ")[1].split("%")[0]) for line in lines]
    assert shares[0] >= shares[1]  # the expanded interval is the wider: it holds the mean as often
