"""``bench.reader_overlap`` prints each of its three parts on a small corpus, and leaves the
interpreter's switch interval as it found it."""

import re
import sys


def test_every_part_prints_its_figures_and_the_switch_interval_is_restored(tmp_path, capsys,
                                                                          monkeypatch):
    import bench.machine_speed
    import bench.reader_overlap as overlap

    monkeypatch.setattr(overlap, "REPEATS", 1)
    monkeypatch.setattr(bench.machine_speed, "OUTPUTS", 200)  # the speed probe: milliseconds
    before = sys.getswitchinterval()
    overlap.main(["--items", "6", "--work", str(tmp_path)])
    assert sys.getswitchinterval() == before
    out = capsys.readouterr().out
    cells = re.findall(r"^  (\S+) +wall +(\d+) ms; CPU +(\d+) ms in all: the cell's thread +(\d+), "
                       r"the others \(chunks, clips\) +(-?\d+); side by side +(\d+) ms$", out, re.M)
    assert [cell[0] for cell in cells] == ["base", "w-bon"]
    threads = re.findall(r"^  (first sight|the file's read).* 1 thread +\d+, 2 threads +\d+ "
                         r"\(\d+\.\d\dx\)$", out, re.M)
    assert threads == ["first sight", "the file's read"]
    intervals = re.search(r"^  5,000 us: [\d,]+, 1,000 us: [\d,]+, 50 us: [\d,]+, 20 us: [\d,]+$",
                          out, re.M)
    assert intervals, out


def test_the_interval_is_restored_when_a_cell_fails(tmp_path, monkeypatch):
    import pytest

    import bench.reader_overlap as overlap

    def failing(*args, **kwargs):
        sys.setswitchinterval(0.003)  # as a cell under the loop's interval would leave it
        raise RuntimeError("a cell failed")

    before = sys.getswitchinterval()
    monkeypatch.setattr(overlap, "cold_cell", failing)
    with pytest.raises(RuntimeError, match="a cell failed"):
        overlap.switch_intervals(_NoItems(), tmp_path)
    assert sys.getswitchinterval() == before


class _NoItems(list):
    """A dataset of no items: what the model is built from, its labels, and a length."""

    labels = ("Anger", "Sadness")
