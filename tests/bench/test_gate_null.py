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


def test_a_sparse_update_changes_only_so_many_items_and_the_script_prints_its_rate(capsys):
    from bench.gate_null import sparse_updates

    old, new = next(sparse_updates(1, 40, 3))
    assert old.keys() == new.keys() and sum(old[i] != new[i] for i in old) == 3
    main(["--items", "30", "--draws", "3", "--changed", "4", "8"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"30 items of which {k} changed, 3 null updates, five metrics at 95% together (98% each), "
        "expanded intervals" for k in (4, 8)]
    assert lines[0].endswith("0.0% of cells called worse (± 0.0)")  # fewer than 7: never worse
