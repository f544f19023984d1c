"""``python -m harness.report``: build, compare and merge run reports.

    python -m harness.report RUN                 rebuild RUN's report.json, tables and figures
    python -m harness.report compare A B         paired change per cell and metric; exit 1 if B is
                                                 significantly worse anywhere (A, B: run or
                                                 baselines folders)
    python -m harness.report compare RUN RUN --models M1 M2
                                                 M2's cells against M1's, per corpus and strategy
    python -m harness.report merge RUN... --out DIR
                                                 one report from several runs (shards)
    python -m harness.report view RUN            print report.html's path; open it where a
                                                 browser is available (--no-open: print only)
"""

import argparse
import math
import sys
from pathlib import Path

from harness.report.build import BuiltReport, build_report
from harness.report.merge import merge_runs
from harness.report.stopped import read_stopped
from harness.resampling import INTERVALS


def _built(built: BuiltReport, run_dir: Path) -> int:
    if built.results:
        print("\n".join(built.results))
    print(f"report: {built.path}\ntables: {run_dir / 'tables.md'}\npage: {run_dir / 'report.html'}")
    if built.stopped:
        print(built.stopped)
    for note in built.notes:
        print(f"note: {note}", file=sys.stderr)
    for _, reason in built.bad_cells:
        print(f"error: bad cell file left out: {reason}", file=sys.stderr)
    return 1 if built.bad_cells else 0


def _build(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    if not (args.run_dir / "cells").is_dir():
        stop = read_stopped(args.run_dir)  # a run whose first cell had not yet finished
        why = f": no cell recorded ({stop['reason']})" if stop is not None else ""
        print(f"error: {args.run_dir} has no cells/ folder{why}{_runs_inside(args.run_dir)}",
              file=sys.stderr)
        return 2
    return _built(build_report(args.run_dir), args.run_dir)


def _runs_inside(folder: Path, command: str = "python -m harness.report ") -> str:
    """What to say of a folder that holds runs (a report folder given for a run): its runs,
    the newest named; else nothing."""
    try:
        runs = sorted(p.name for p in folder.iterdir() if (p / "cells").is_dir())
    except OSError:
        return ""
    if not runs:
        return ""
    shown = ", ".join(runs) if len(runs) <= 5 else f"{len(runs)} runs, the newest {runs[-1]}"
    return f"; it holds runs ({shown}): give one, e.g. {command}{folder / runs[-1]}"


def _compare(argv: list[str]) -> int:
    from harness.report.compare import CompareError, compare, markdown

    parser = argparse.ArgumentParser(prog="python -m harness.report compare")
    parser.add_argument("a", type=Path, help="the reference: a run folder or a baselines folder")
    parser.add_argument("b", type=Path, help="the run judged against it")
    parser.add_argument("--resamples", type=_at_least_one, default=1000,
                        help="bootstrap resamples, at least (more where a CI's ends need them: "
                             "2,000 at the default 98%%)")
    parser.add_argument("--gate-alpha", type=_share, default=0.05,
                        help="how often a cell that changed nothing systematically may be called "
                             "worse: its metrics' intervals hold together at 1 - alpha (default "
                             "0.05; C cells held to 5%% as a whole: 0.05/C)")
    parser.add_argument("--models", nargs=2, metavar=("MODEL_A", "MODEL_B"),
                        help="A's cells of MODEL_A against B's of MODEL_B, per corpus and "
                             "strategy (A and B may be the same run)")
    parser.add_argument("--interval", choices=INTERVALS, default="expanded",
                        help="how each CI's level is taken: expanded (as wide as Student's t "
                             "interval over few items; the default) or percentile (the plain "
                             "interval, narrow on few items)")
    args = parser.parse_args(argv)
    try:
        comparison = compare(args.a, args.b, n_resamples=args.resamples, alpha=args.gate_alpha,
                             models=tuple(args.models) if args.models else None,
                             interval=args.interval)
    except CompareError as exc:
        hint = next((h for h in (_runs_inside(f, "") for f in (args.a, args.b)) if h), "")
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    print(markdown(args.a, args.b, comparison, tuple(args.models) if args.models else None),
          end="")
    # a cell with nothing scored in both (B's items all failed, say) cannot be called not worse
    return 1 if any(rows is None or any(c.verdict == "worse" for c in rows)
                    for rows in comparison.changes.values()) else 0


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 0.5, not {text!r}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _merge(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report merge")
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="the merged run folder")
    args = parser.parse_args(argv)
    try:
        built = merge_runs(args.out, args.runs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _built(built, args.out)


def _view(argv: list[str]) -> int:
    import webbrowser

    parser = argparse.ArgumentParser(prog="python -m harness.report view")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--no-open", action="store_true", help="print the path only")
    args = parser.parse_args(argv)
    page = args.run_dir / "report.html"
    if not page.is_file():
        if not (args.run_dir / "cells").is_dir():
            print(f"error: {args.run_dir} has no report.html and no cells/ to build it from"
                  f"{_runs_inside(args.run_dir)}", file=sys.stderr)
            return 2
        build_report(args.run_dir)
    print(page.resolve())
    if not args.no_open:
        try:
            webbrowser.get()  # raises where no browser is available (a server, CI)
        except webbrowser.Error:
            return 0
        webbrowser.open(page.resolve().as_uri())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"compare": _compare, "merge": _merge, "view": _view}
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    return _build(argv)


if __name__ == "__main__":  # importable: the tests call main() in process
    sys.exit(main())
