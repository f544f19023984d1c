from bench.gate_null import main, null_updates


def test_the_null_updates_are_alike_on_both_sides_and_the_script_prints_each_rule(capsys):
    old, new = next(null_updates(1, 40))
    assert old.keys() == new.keys() and old != new
    main(["--items", "12", "--draws", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "12 items, 4 null updates, five metrics at 95% together (98% each), expanded intervals",
        "12 items, 4 null updates, five metrics at 95% together (98% each), plain percentile",
        "12 items, 4 null updates, five separate 95% CIs, plain percentile"]
    assert all("% of cells called worse (± " in line for line in lines)
