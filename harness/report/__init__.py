"""Reports: read a run's cell records, write report.json, the tables and the figures."""

from harness.report.relative import format_with_change, relative_change

__all__ = ["build_report", "format_with_change", "relative_change"]


def build_report(run_dir):
    """Rebuild a run's report.json, tables and figures (see :mod:`harness.report.build`);
    returns a ``BuiltReport`` (the report's path, the cell files left out and why)."""
    from harness.report.build import build_report as build

    return build(run_dir)
