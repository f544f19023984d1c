"""How often the regression gate fails a cell that changed nothing systematically.

    python -m bench.gate_null                      # 8, 30 and 200 items, 1,000 and 600 draws
    python -m bench.gate_null --items 26 --draws 400
    python -m bench.gate_null --items 200 --draws 1000 --changed 5 7 10 14

Each draw is a null update: every item's baseline and new prediction drawn alike around the
item's own centre (a Dirichlet of concentration 5), so the new outputs are no better and no
worse, only different, as after a kernel, dtype or library change. It prints the share of such
cells the gate calls worse at ``--gate-alpha`` 0.05 (the cell's five metrics held together, 98%
CIs) with the expanded intervals (the default) and with plain percentile ones, and at 0.125 with
plain ones (five separate 95% CIs, the gate's first rule), with each share's binomial standard
error. With ``--changed``, each update changes only that many of the items (the rest stay
as they were), under the gate's default rule.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator

import numpy as np

from harness import metrics
from harness.runner.gating import paired_changes

Scores = dict[str, dict[str, float]]


def drawn_side(rng: np.random.Generator, truth: np.ndarray, centre: np.ndarray
               ) -> dict[str, np.ndarray]:
    """Per-item scores of one side: each item's prediction drawn around its ``centre`` (a
    Dirichlet of concentration 5), scored against its annotators' ``truth``."""
    pred = np.array([rng.dirichlet(5 * c + 0.1) for c in centre])
    return {**metrics.per_item(truth, pred), "acc": metrics.accuracy_per_item(truth, pred)}


def null_updates(draws: int, items: int, seed: int = 3) -> Iterator[tuple[Scores, Scores]]:
    """``draws`` pairs of (baseline, run) item scores on ``items`` items of 4 classes, the two
    sides drawn alike (a null update)."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        truth, centre = rng.dirichlet(np.ones(4), size=items), rng.dirichlet(np.ones(4), size=items)
        yield _by_item(drawn_side(rng, truth, centre)), _by_item(drawn_side(rng, truth, centre))


def sparse_updates(draws: int, items: int, changed: int, seed: int = 3
                   ) -> Iterator[tuple[Scores, Scores]]:
    """Null updates in which only ``changed`` of the ``items`` change (a prompt's word, a kernel
    that moves a few answers): the run is the baseline but for that many items, chosen at
    random, whose predictions are drawn anew as the baseline's were."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        truth, centre = rng.dirichlet(np.ones(4), size=items), rng.dirichlet(np.ones(4), size=items)
        old, fresh = drawn_side(rng, truth, centre), drawn_side(rng, truth, centre)
        moved = rng.choice(items, changed, replace=False)
        new = {m: v.copy() for m, v in old.items()}
        for m, v in new.items():
            v[moved] = fresh[m][moved]
        yield _by_item(old), _by_item(new)


def _by_item(scores: dict[str, np.ndarray]) -> Scores:
    return {str(i): {m: float(v[i]) for m, v in scores.items()} for i in range(len(scores["js"]))}


def failed_share(draws: int, items: int, alpha: float, seed: int, interval: str = "expanded",
                 changed: int | None = None) -> float:
    """The share of ``draws`` null updates whose cell the gate calls worse at ``alpha``, its
    intervals taken as ``interval`` says (``changed``: of ``sparse_updates``)."""
    updates = (null_updates(draws, items, seed) if changed is None
               else sparse_updates(draws, items, changed, seed))
    failed = sum(any(c.verdict == "worse" for c in paired_changes(old, new, seed=k, alpha=alpha,
                                                                 interval=interval))
                 for k, (old, new) in enumerate(updates))
    return failed / draws


RULES = ((0.05, "expanded", "five metrics at 95% together (98% each), expanded intervals"),
         (0.05, "percentile", "five metrics at 95% together (98% each), plain percentile"),
         (0.125, "percentile", "five separate 95% CIs, plain percentile"))


def arguments(prog: str, items: list[int], seed: int, argv: list[str] | None
              ) -> tuple[argparse.Namespace, list[int]]:
    """The null-update scripts' options (``--items``, ``--draws``, ``--seed``, ``--changed``)
    and the draws for each number of items (the last repeated)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--items", type=int, nargs="+", default=items)
    parser.add_argument("--draws", type=int, nargs="+", default=[1000, 1000, 600])
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--changed", type=int, nargs="+", default=[],
                        help="instead, null updates of --items' first number in which only this "
                             "many items change (sparse_updates), under the default rule")
    args = parser.parse_args(argv)
    return args, args.draws + [args.draws[-1]] * (len(args.items) - len(args.draws))


def main(argv: list[str] | None = None) -> None:
    args, draws = arguments("python -m bench.gate_null", [8, 30, 200], 21, argv)
    for changed in args.changed:
        items, count = args.items[0], draws[0]
        share = failed_share(count, items, 0.05, args.seed + changed, "expanded", changed)
        print(f"{items} items of which {changed} changed, {count} null updates, {RULES[0][2]}: "
              f"{100 * share:.1f}% of cells called worse "
              f"(± {100 * math.sqrt(share * (1 - share) / count):.1f})", flush=True)
    if args.changed:
        return
    for items, count in zip(args.items, draws):
        for alpha, interval, rule in RULES:
            share = failed_share(count, items, alpha, args.seed + items, interval)
            error = math.sqrt(share * (1 - share) / count)
            print(f"{items} items, {count} null updates, {rule}: {100 * share:.1f}% of cells "
                  f"called worse (± {100 * error:.1f})", flush=True)


if __name__ == "__main__":
    main()
