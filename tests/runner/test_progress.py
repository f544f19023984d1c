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


def test_a_line_every_ten_seconds_and_none_for_a_short_cell():
    """A cell of a few seconds writes nothing (its lines broke pytest's line of dots); a long
    one writes a line once ten seconds have passed since its last, and its end."""
    lines, now = [], [0.0]
    short = Progress("short", 26, lines.append, clock=lambda: now[0])
    now[0] = 0.4
    short(26)
    assert lines == []
    long = Progress("long", 1000, lines.append, clock=lambda: now[0])
    for at, done in [(3.0, 100), (9.9, 300), (10.4, 310), (15.0, 500), (20.5, 700), (21.0, 1000)]:
        now[0] = at
        long(done)
    assert [line.split(":")[1].split(",")[0] for line in lines] == [" 310/1000 items",
                                                                   " 700/1000 items",
                                                                   " 1000/1000 items"]


def test_a_slow_cell_gets_an_eta_and_one_with_nothing_done_a_question_mark():
    lines, now = [], [0.0]
    progress = Progress("slow", 10, lines.append, clock=lambda: now[0])
    now[0] = 10.0
    progress(0)
    now[0] = 20.0
    progress(5)  # a quarter of an item a second
    assert lines == ["slow: 0/10 items, 0.0 items/s, ETA ?",
                     "slow: 5/10 items, 0.2 items/s, ETA 20s"]


def test_the_rate_of_a_cell_under_a_second_old_is_over_its_fraction_of_a_second():
    lines, now = [], [0.0]
    progress = Progress("fast", 4, lines.append, clock=lambda: now[0], every=0.25)
    now[0] = 0.5
    progress(2)
    assert lines == ["fast: 2/4 items, 4.0 items/s, ETA 0s"]
