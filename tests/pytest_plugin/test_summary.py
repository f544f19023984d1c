"""The controller's side: workers' progress followed as it arrives."""

from harness.pytest_plugin.summary import LogFollower


def test_progress_lines_of_every_worker_reach_the_controller_once_and_whole(tmp_path):
    seen: list[str] = []
    follower = LogFollower(tmp_path / "logs", seen.append, interval=3600)
    follower.poll()  # no folder yet: nothing, no error
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "gw0.log").write_text("cell-a: 10/100 items\ncell-a: 2")
    (tmp_path / "logs" / "gw1.log").write_text("cell-b: 5/50 items\n")
    follower.poll()
    assert seen == ["[gw0] cell-a: 10/100 items", "[gw1] cell-b: 5/50 items"]
    with open(tmp_path / "logs" / "gw0.log", "a") as f:
        f.write("0/100 items\n")
    follower.poll()
    follower.poll()
    assert seen[2:] == ["[gw0] cell-a: 20/100 items"]


def test_the_follower_thread_delivers_without_being_asked(tmp_path):
    import time

    (tmp_path / "gw0.log").write_text("")
    seen: list[str] = []
    follower = LogFollower(tmp_path, seen.append, interval=0.05).start()
    with open(tmp_path / "gw0.log", "a") as f:
        f.write("cell: 1/2 items\n")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    follower.stop()
    assert seen == ["[gw0] cell: 1/2 items"]


def test_a_progress_line_never_lands_on_a_line_of_test_dots(pytestconfig):
    """Under -n, pytest writes a line of dots while the workers' progress arrives: each progress
    line starts a line of its own (it was glued after the dots and after ``[100%]``)."""
    import io

    from _pytest.terminal import TerminalReporter

    from harness.pytest_plugin.summary import own_line

    out = io.StringIO()
    reporter = TerminalReporter(pytestconfig, out)
    reporter.write("ss..")
    own_line(reporter, "[gw0] cell: 26/26 items")
    own_line(reporter, "[gw1] cell: 3/26 items")
    reporter.write("..  [100%]")
    own_line(reporter, "[gw0] last")
    assert out.getvalue().splitlines() == ["ss..", "[gw0] cell: 26/26 items", "[gw1] cell: 3/26 items",
                                           "..  [100%]", "[gw0] last"]
