"""``python -m harness.cache merge TARGET SOURCE...``: fold several machines' caches into one;
``python -m harness.cache info CACHE``: what one holds, by kind and model."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.cache.merge import merge_caches
from harness.cache.store import CacheError


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.cache merge TARGET SOURCE...`` or ``info CACHE``."""
    import argparse

    from harness.cache.info import info_lines

    parser = argparse.ArgumentParser(prog="python -m harness.cache")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser("merge", help="fold caches into TARGET (existing entries kept)")
    merge.add_argument("target")
    merge.add_argument("sources", nargs="+")
    info = commands.add_parser("info", help="what a cache holds, by kind and model (read-only)")
    info.add_argument("cache", nargs="?", default=".cache/harness/generations.sqlite")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            print("\n".join(info_lines(args.cache)))
            return 0
        for source, count in merge_caches(args.target, args.sources).items():
            print(f"{source}: {count} entries added to {args.target}")
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
