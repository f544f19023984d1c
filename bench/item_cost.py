"""What one item costs a strategy once its answers are in hand: parsing its candidates, and its
whole ``result`` (parse, combine, the item's bookkeeping), in microseconds.

    python -m bench.item_cost                  # 200 items, the fastest of 7 repeats
    python -m bench.item_cost --items 500 --repeats 11

This is the interpreter's share of a rerun (every generation cached) and of a cold cell's
consumer, with no clip, cache or record in the way. The answers are :class:`InstantModel`'s (one
plain JSON object per candidate, different per item and candidate); verifier scores are fixed.
Each figure is the fastest of ``--repeats`` timings, which on a noisy machine is the steadiest
estimate of the code's own cost, so that two commits can be compared by running this in each
(a ``git worktree``) one after the other.
"""

from __future__ import annotations

import argparse
import timeit

from bench.instant_model import InstantModel
from bench.machine_speed import speed_noted
from harness.models.api import Request

STRATEGIES = ("base", "bon", "w-bon", "alm-v", "w-alm-v", "sample-n")
LABELS = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral")


def item_costs(items: int, repeats: int) -> list[tuple[str, int, float, float]]:
    """Per strategy: its name, candidates an item, and microseconds an item for parsing its
    candidates and for its whole ``result``."""
    from harness.strategies import StrategyConfig, get_strategy
    from harness.strategies._results import parsed_candidates

    model, config = InstantModel(LABELS), StrategyConfig()
    requests = [Request(None, "prompt", f"item{i}") for i in range(items)]
    rows = []
    for name in STRATEGIES:
        strategy = get_strategy(name)
        generations = model.generate(requests, strategy.decoding(config, LABELS))
        candidates = len(generations[0].candidates)
        scores = [0.8, 0.3, 0.5, 0.1, 0.9][:candidates] if strategy.needs_verifier else None

        def parse(gens=generations) -> None:
            for generation in gens:
                parsed_candidates(generation, LABELS)

        def result(gens=generations, strategy=strategy, scores=scores) -> None:
            for generation in gens:
                strategy.result("item", generation, LABELS, config, scores)

        rows.append((name, candidates, _fastest(parse, repeats) / items * 1e6,
                     _fastest(result, repeats) / items * 1e6))
    return rows


def _fastest(run, repeats: int) -> float:
    return min(timeit.repeat(run, number=1, repeat=repeats))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    with speed_noted():
        print(f"{args.items} items, {len(LABELS)} labels, microseconds an item, the fastest of "
              f"{args.repeats} repeats:")
        print(f"  {'strategy':10} {'candidates':>10} {'parse':>8} {'result':>8}")
        for name, candidates, parse, result in item_costs(args.items, args.repeats):
            print(f"  {name:10} {candidates:10} {parse:8.1f} {result:8.1f}")


if __name__ == "__main__":
    main()
