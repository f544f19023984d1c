"""``python -m harness.report <run-dir>``: rebuild report.json, tables and figures from the cells."""

import argparse
import sys
from pathlib import Path

from harness.report.build import build_report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    if not (args.run_dir / "cells").is_dir():
        print(f"error: {args.run_dir} has no cells/ folder", file=sys.stderr)
        return 2
    built = build_report(args.run_dir)
    print(f"report: {built.path}\ntables: {args.run_dir / 'tables.md'}")
    for _, reason in built.bad_cells:
        print(f"error: bad cell file left out: {reason}", file=sys.stderr)
    return 1 if built.bad_cells else 0


sys.exit(main())
