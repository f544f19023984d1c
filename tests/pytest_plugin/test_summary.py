"""The controller's side: workers' progress followed as it arrives, and what the run says at its end."""

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
    assert seen == ["[gw0] cell: 1/2 items"]  # before stop(), which polls once more
    asked = time.monotonic()
    follower.stop()
    assert time.monotonic() - asked < 2 and not follower._thread.is_alive()
    assert seen == ["[gw0] cell: 1/2 items"] and follower._thread.daemon


def test_what_arrived_since_the_last_poll_is_delivered_on_stop(tmp_path):
    (tmp_path / "gw0.log").write_text("")
    seen: list[str] = []
    follower = LogFollower(tmp_path, seen.append, interval=3600).start()
    (tmp_path / "gw0.log").write_text("cell: 2/2 items\n")
    follower.stop()
    assert seen == ["[gw0] cell: 2/2 items"]


def test_a_reporter_of_another_kind_gets_the_line_alone():
    from types import SimpleNamespace

    from harness.pytest_plugin.summary import own_line

    written: list[str] = []
    reporter = SimpleNamespace(write=written.append, write_line=lambda line: written.append(
        line + "\n"))  # no pytest writer to ask where its line is
    own_line(reporter, "[gw0] cell: 1/2 items")
    assert written == ["[gw0] cell: 1/2 items\n"]


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


def test_the_end_of_run_lines_name_the_cells_without_snapshot_six_at_most_and_each_verdict_once():
    from types import SimpleNamespace

    from harness.pytest_plugin.summary import regression_findings, summary_lines
    from harness.runner.snapshots import NONE, PREDATES

    def report(cell, *properties, when="call"):
        return SimpleNamespace(nodeid=f"evals/test_grid.py::test_cell[{cell}]", when=when,
                               user_properties=list(properties))

    cells = [f"m-d-s{n}" for n in range(8)]
    stats = {"passed": [report(c, ("harness_snapshot", NONE)) for c in reversed(cells)]
             + [report("m-d-old", ("harness_snapshot", PREDATES + "uar, uar_untied")),
                report("m-d-a", ("harness_gate", "m: better on js")),
                report("m-d-b", ("harness_gate", "m: better on js"), when="teardown"),
                report("m-d-c", ("harness_gate", "setup, not counted"), when="setup"),
                report("m-d-d", ("harness_baseline", "evals/baselines/m-d-d.json"), ("other", 1))]}
    marked = summary_lines(regression_findings(stats))
    assert [markup for _, markup in marked] == [{"yellow": True}] * 2 + [{}] * 2
    lines = [line for line, _ in marked]
    assert lines[0].startswith("harness: 8 cells have no snapshot for this configuration")
    assert lines[0].endswith(": m-d-s0, m-d-s1, m-d-s2, m-d-s3, m-d-s4, m-d-s5 and 2 more")
    assert lines[1].startswith("harness: 1 cell matched snapshots recorded before this harness "
                               "computed uar, uar_untied (compared without them")
    assert lines[2:] == ["harness gate: m: better on js",
                         "harness: recorded 1 baseline in evals/baselines and their cells' "
                         "snapshots (in snapshots/ beside them)"]
    six = {"passed": [report(c, ("harness_snapshot", NONE)) for c in cells[:6]]}
    [(line, markup)] = summary_lines(regression_findings(six))
    assert line.endswith("m-d-s4, m-d-s5") and markup == {"yellow": True}
    one = {"passed": [report(cells[0], ("harness_snapshot", NONE))]}
    assert summary_lines(regression_findings(one))[0][0].startswith(
        "harness: 1 cell has no snapshot for this configuration")
    seven = {"passed": [report(c, ("harness_snapshot", NONE)) for c in cells[:7]]}
    assert summary_lines(regression_findings(seven))[0][0].endswith("m-d-s5 and 1 more")


def test_the_gate_says_how_many_cells_chance_alone_would_fail_over_those_whose_scores_moved():
    from types import SimpleNamespace

    from harness.pytest_plugin.summary import gated_property, regression_findings, summary_lines
    from harness.runner.gating import GateVerdict, MetricChange

    def change(verdict, moved):
        return MetricChange("js", 0.4, 0.5, 0.05, 0.15, 40, verdict, 0.98, 7, moved, 0.001, 0.9)

    def gated(verdict, moved, alpha=0.05):
        return gated_property(GateVerdict("m-d-s", "a", "b", (change(verdict, moved),)), alpha)

    def lines(values):
        reports = [SimpleNamespace(nodeid=f"evals/test_grid.py::test_cell[m-d-s{k}]", when=when,
                                   user_properties=[("harness_gated", value)])
                   for k, value in enumerate(values) for when in ("call", "teardown")]
        return [line for line, _ in summary_lines(regression_findings({"passed": reports}))]

    assert gated("worse", 12) == "0.05 1 1" and gated("same", 0, 0.01) == "0.01 0 0"
    moved = [gated("worse", 12)] * 3 + [gated("same", 20)] * 37 + [gated("same", 0)] * 60
    assert lines(moved) == [
        "harness gate: 3 of 40 cells whose scores moved came out worse; had the changes moved "
        "nothing systematically, up to about 2 would fail by chance, each held to 5% alone: "
        "--gate-alpha 0.00125 holds all 40 to 5% together"]
    assert lines(moved[:9]) == []  # chance fails fewer than one in two such runs
    assert lines([gated("same", 0)] * 100) == []  # no score moved: nothing can fail by chance
    assert lines([gated("same", 3, 0.05 / 40)] * 40) == []  # already held together
    assert lines([gated("same", 3, 0.05)] * 20 + [gated("same", 3, 0.01)] * 20) == []  # mixed


def test_a_workers_progress_lines_reach_the_controllers_terminal(pytester):
    """Under -n, a cell's progress lines go to its worker's log, which the controller follows
    and prints, each on a line of its own."""
    pytester.makepyfile(test_grid="""
        import os
        from harness.pytest_plugin.fixtures import _progress_sink
        from harness.runner import GridConfig
        GRID = GridConfig(models=("uniform",), datasets=("crema_d", "iemocap"))

        def test_cell(cell, request):
            _progress_sink(request)(f"{cell.id}: 1/2 items on {os.environ['PYTEST_XDIST_WORKER']}")
    """)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    for corpus in ("crema_d", "iemocap"):  # "[gw1] 09:04:13 uniform-iemocap-base: ..." each
        result.stdout.re_match_lines([rf"^\[(gw\d)\] \d\d:\d\d:\d\d uniform-{corpus}-base: "
                                      r"1/2 items on \1$"])
