"""The reliability suite's counts, printed at the end of the run (they travel from xdist workers;
a conftest at this level is loaded on the xdist controller too)."""


def pytest_terminal_summary(terminalreporter):
    lines = [value for report in terminalreporter.stats.get("passed", [])
             for name, value in report.user_properties if name == "reliability"]
    if lines:
        terminalreporter.section("reliability: inputs tried, failures handled, items lost")
        for line in sorted(lines):
            terminalreporter.write_line(line)
