from harness.runner.progress import Progress


def test_progress_lines_give_rate_and_eta():
    lines, now = [], [100.0]
    progress = Progress("m-d-s", 1200, lines.append, clock=lambda: now[0])
    now[0] = 137.0
    progress(300)
    assert lines == ["m-d-s: 300/1200 items, 8.1 items/s, ETA 1m51s"]
    now[0] = 250.0
    progress(1200)
    assert lines[-1].endswith("ETA 0s")
