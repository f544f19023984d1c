"""``bench.item_cost`` prints a row per strategy with its candidates and both costs."""

import re


def test_each_strategy_s_parse_and_result_are_timed_per_item(capsys, monkeypatch):
    import bench.machine_speed
    from bench.item_cost import main

    monkeypatch.setattr(bench.machine_speed, "OUTPUTS", 200)  # the speed probe: milliseconds
    main(["--items", "4", "--repeats", "2"])
    out = capsys.readouterr().out
    assert out.splitlines()[1] == "4 items, 8 labels, microseconds an item, the fastest of 2 repeats:"
    rows = re.findall(r"^  (\S+) +(\d+) +(\d+\.\d) +(\d+\.\d)$", out, re.M)
    assert [(name, int(n)) for name, n, *_ in rows] == [
        ("base", 1), ("bon", 5), ("w-bon", 5), ("alm-v", 3), ("w-alm-v", 3), ("sample-n", 5)]
    assert all(float(parse) > 0 and float(result) > 0 for *_, parse, result in rows)
