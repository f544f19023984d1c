"""Reports: per-cell results, their aggregation and the benchmark tables."""

from harness.report.relative import format_with_change, relative_change

__all__ = ["format_with_change", "relative_change"]
