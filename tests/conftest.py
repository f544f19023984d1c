"""The reliability suite's counts, printed at the end of the run (they travel from xdist workers;
a conftest at this level is loaded on the xdist controller too); on a worker, its share of the
cores for torch and BLAS, as the grid's workers get theirs (the subprocesses tests start inherit
it): two workers each running two threads on two cores slowed the torch tests severalfold."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    from harness.pytest_plugin.scheduling import share_cores

    share_cores()


def pytest_terminal_summary(terminalreporter):
    lines = [value for report in terminalreporter.stats.get("passed", [])
             for name, value in report.user_properties if name == "reliability"]
    if lines:
        terminalreporter.section("reliability: inputs tried, failures handled, items lost")
        for line in sorted(lines):
            terminalreporter.write_line(line)
