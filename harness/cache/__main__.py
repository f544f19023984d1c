"""``python -m harness.cache merge TARGET SOURCE...``: fold several machines' caches into one;
``python -m harness.cache info CACHE``: what one holds, by kind and model; ``python -m
harness.cache prune CACHE --model NAME``: remove a model's entries (or a kind's, or those
written before a day)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.cache.merge import merge_caches
from harness.cache.store import CacheError

CACHE_FILE = "generations.sqlite"  # the file a --cache-dir folder holds
DEFAULT_CACHE = f".cache/harness/{CACHE_FILE}"  # the grid's --cache-dir default, and its file


def cache_file(path: str) -> str:
    """A cache named by its file, or by the folder that holds it (what ``--cache-dir`` names)."""
    return str(Path(path) / CACHE_FILE) if Path(path).is_dir() else path


def _parser():
    """The command line: ``merge``, ``info`` and ``prune``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.cache")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="fold caches into TARGET (existing entries kept)")
    merge.add_argument("target")
    merge.add_argument("sources", nargs="+")
    info = commands.add_parser("info", help="what a cache holds, by kind and model (read-only)")
    info.add_argument("cache", nargs="?", default=DEFAULT_CACHE,
                      help=f"the cache file, or the folder holding it (default: {DEFAULT_CACHE}, "
                           "the grid's, from the project's folder)")
    prune = commands.add_parser("prune", help="remove the entries of a model, a kind or before a "
                                              "day, and give their space back to the disk")
    prune.add_argument("cache")
    prune.add_argument("--model", help="a model's name, as info lists it (all its revisions)")
    prune.add_argument("--kind", help="generation, labels or clip")
    prune.add_argument("--before", metavar="YYYY-MM-DD", help="entries written before this day")
    prune.add_argument("--dry-run", action="store_true", help="count what would be removed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.cache merge TARGET SOURCE...``, ``info CACHE`` or ``prune CACHE ...``."""
    from harness.cache.info import entries, info_lines
    from harness.cache.prune import prune_cache

    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "merge":
        args.target, args.sources = cache_file(args.target), [cache_file(s) for s in args.sources]
    else:
        args.cache = cache_file(args.cache)
    try:
        if args.command == "info":
            print("\n".join(info_lines(args.cache)))
            return 0
        if args.command == "prune":
            pruned = prune_cache(args.cache, model=args.model, kind=args.kind, before=args.before,
                                 dry_run=args.dry_run)
            kept = ("" if args.dry_run or pruned.space_returned or not pruned.entries else
                    "; another run holds the file, so its space stays there for later entries "
                    "(prune again once it ends to give it back)")
            print(f"{args.cache}: {entries(pruned.entries)} ({pruned.value_bytes / 2**20:,.2f} MiB)"
                  f" {'would be removed' if args.dry_run else 'removed'}{kept}")
            return 0
        for source, count in merge_caches(args.target, args.sources).items():
            print(f"{source}: {entries(count)} added to {args.target}")
    except CacheError as exc:
        where = ("" if args.command != "info" or args.cache != DEFAULT_CACHE else
                 " (the grid's default cache, in the project's folder: run this there, or name "
                 "the cache file)")
        print(f"error: {exc}{where}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # pages damaged after the file's header: seen on reading
        files = [args.target, *args.sources] if args.command == "merge" else [args.cache]
        print(f"error: {' or '.join(files)}: cannot be read ({exc}): the file is damaged "
              "(sqlite3's PRAGMA integrity_check says where); nothing was changed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
