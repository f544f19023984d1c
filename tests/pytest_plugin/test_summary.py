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
