"""``bench.machine_speed`` measures what ``bench/core.py`` measures, and the CPU benchmarks print
it at their start and end."""

import re

import pytest

LINE = (r"machine speed: interpreter ([\d,]+) outputs/s \((\d+)% of a quiet machine's 107,000, "
        r"bench/core.py's parse\), memory (\d+\.\d) GB/s \(int16 to float32 into new memory\)")


@pytest.fixture
def small(monkeypatch):
    """The probes on a few outputs and clips, so that a test takes milliseconds."""
    import bench.machine_speed as speed

    monkeypatch.setattr(speed, "OUTPUTS", 400)
    monkeypatch.setattr(speed, "CLIPS", 2)
    return speed


def test_the_line_gives_both_probes_and_the_interpreter_s_share_of_a_quiet_machine(small):
    found = re.fullmatch(LINE, small.speed_line())
    assert found, small.speed_line()
    rate, share, memory = int(found[1].replace(",", "")), int(found[2]), float(found[3])
    assert rate > 0 and memory > 0
    assert share == round(100 * rate / small.QUIET_PARSE)


def test_the_interpreter_probe_is_bench_core_s_parse(small, monkeypatch):
    import bench.core as core

    asked = []
    monkeypatch.setattr(core, "parse_timed", lambda n: asked.append(n) or (2.0, n))
    assert small.parse_rate() == 200.0 and asked == [400]


def test_the_memory_probe_counts_the_float32_bytes_of_every_clip(small, monkeypatch):
    ran = []
    monkeypatch.setattr(small, "_best", lambda run, repeats=5: ran.append(run()) or 0.5)
    assert small.conversion_rate() == pytest.approx(2 * small.SAMPLES * 4 / 0.5 / 1e9)
    assert ran == [None]


def test_a_cpu_benchmark_prints_the_speed_at_its_start_and_end(small, capsys):
    from bench.item_cost import main

    main(["--items", "2", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(LINE, lines[0]) and re.fullmatch("at the end, " + LINE, lines[-1]), lines
