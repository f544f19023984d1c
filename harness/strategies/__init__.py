"""Test-time scaling strategies, as objects in a registry.

The eight built-in strategies register themselves; :func:`register` adds a user's own::

    from harness.strategies import Strategy, register

    @register
    class Majority(Strategy):
        name = "majority"  # one greedy answer, its argmax as a one-hot distribution
        def combine(self, usable, config):
            probs = np.eye(len(usable[0]["probs"]))[np.argmax(usable[0]["probs"])]
            return probs, usable[0]

Every list of strategy names (the grid's default, those needing a verifier, the chance baselines'
single cell) comes from :func:`strategy_names`.
"""

from harness.strategies import _builtin  # noqa: F401  (registers the built-in strategies)
from harness.strategies._builtin import alpha_of, readout_result
from harness.strategies._config import (
    ALPHAS,
    INVALID_READINGS,
    VERIFIER_TIES,
    StrategyConfig,
    as_config,
)
from harness.strategies._results import ItemResult, add_usage, parsed_candidates, rule_counts
from harness.strategies._run import check_supported, decoding_for, iter_strategy, run_strategy
from harness.strategies._strategy import (
    RunContext,
    Strategy,
    StrategyUnsupported,
    common_decoding,
    get_strategy,
    register,
    strategy_names,
)

__all__ = [
    "ALPHAS",
    "INVALID_READINGS",
    "ItemResult",
    "RunContext",
    "Strategy",
    "StrategyConfig",
    "StrategyUnsupported",
    "VERIFIER_TIES",
    "add_usage",
    "alpha_of",
    "as_config",
    "check_supported",
    "common_decoding",
    "decoding_for",
    "get_strategy",
    "iter_strategy",
    "parsed_candidates",
    "readout_result",
    "register",
    "rule_counts",
    "run_strategy",
    "strategy_names",
]
