"""The reliability suite's counts, printed at the end of the run (they travel from xdist workers;
a conftest at this level is loaded on the xdist controller too); on a worker, its share of the
cores for torch and BLAS, as the grid's workers get theirs (the subprocesses tests start inherit
it): two workers each running two threads on two cores slowed the torch tests severalfold;
``pytester`` without the plugins the grid does not use; and no proxy from the developer's
environment: the API tests' servers are on 127.0.0.1, and the API models honour ``HTTPS_PROXY``
(``tests/models/test_proxies.py`` sets its own)."""

import os

import pytest

for _variable in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_variable, None)  # before any test builds a model
    os.environ.pop(_variable.upper(), None)



def pytest_configure(config):
    """Each of this suite's own xdist workers takes its share of the cores, as a grid's do."""
    from harness.pytest_plugin.scheduling import share_cores, worker_count, worker_id

    if worker_id(config):
        share_cores(worker_count(config))


def pytest_terminal_summary(terminalreporter):
    lines = [value for report in terminalreporter.stats.get("passed", [])
             for name, value in report.user_properties if name == "reliability"]
    if lines:
        terminalreporter.section("reliability: inputs tried, failures handled, items lost")
        for line in sorted(lines):
            terminalreporter.write_line(line)


@pytest.fixture
def pytester(pytester, monkeypatch):
    """pytester whose runs in a process of their own load none of the installed plugins the grid
    does not use (hypothesis's and anyio's, from the test and api extras): 0.45 s of each such
    run's start, and the tests start a hundred. The README's command, run by CI, keeps
    hypothesis's (the project's ``addopts`` leave anyio's out everywhere)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:anyio")
    return pytester
