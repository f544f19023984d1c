"""The reliability suite prints its counts at the end of the run (they travel from xdist workers)."""


def pytest_terminal_summary(terminalreporter):
    lines = [value for report in terminalreporter.stats.get("passed", [])
             for name, value in report.user_properties if name == "reliability"]
    if lines:
        terminalreporter.section("reliability: inputs tried, failures handled, items lost")
        for line in sorted(lines):
            terminalreporter.write_line(line)
