"""StrategyConfig's checks: a value it cannot use is refused when the config is made (at a
grid's start-up for ``--strategy-arg``), not deep in a strategy after the model has run."""

import pytest

from harness.strategies import StrategyConfig


@pytest.mark.parametrize("field", ["tau", "temperature"])
@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan"), "1", True, 10**400])
def test_tau_and_temperature_are_finite_numbers_above_zero(field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite number above 0"):
        StrategyConfig(**{field: value})


@pytest.mark.parametrize("field", ["beams", "verifier_beams", "samples", "max_new_tokens",
                                   "cot_max_new_tokens"])
def test_counts_are_whole_numbers_of_at_least_one(field):
    assert getattr(StrategyConfig(**{field: 1}), field) == 1  # one beam is a beam search
    for value in (0, -2, 2.0, "3", True, None):
        with pytest.raises(ValueError, match=f"{field} must be a whole number of at least 1"):
            StrategyConfig(**{field: value})


def test_the_seed_and_the_named_choices_are_checked():
    assert StrategyConfig(seed=0).seed == 0 and StrategyConfig(seed=7).seed == 7
    for seed in (-1, 1.0, "1", True):
        with pytest.raises(ValueError, match="seed must be a whole number of at least 0"):
            StrategyConfig(seed=seed)
    for field, value, said in (("unscored", "skip", "unscored must be 'keep' or 'drop'"),
                               ("alpha", "log", "alpha must be one of"),
                               ("verifier_weighting", "max", "verifier_weighting must be")):
        with pytest.raises(ValueError, match=said):
            StrategyConfig(**{field: value})
    assert StrategyConfig(constrained="False").constrained is False  # the command line's text


def test_a_config_may_be_given_as_its_fields_and_nothing_else():
    from harness.strategies._config import as_config

    assert as_config(None) == StrategyConfig()
    given = StrategyConfig(beams=3)
    assert as_config(given) is given and as_config({"beams": 3}) == given
    with pytest.raises(ValueError, match="beam"):
        as_config({"beam": 3})
    with pytest.raises(TypeError, match="config must be a StrategyConfig or a mapping"):
        as_config([("beams", 3)])


def test_the_defaults_are_the_protocol_docs_strategies_md_states():
    """A default moved silently changes every cell computed from then on (and its cache keys):
    the documented protocol is held here, field by field."""
    from dataclasses import asdict

    assert asdict(StrategyConfig()) == {
        "beams": 5, "verifier_beams": 3, "tau": 1.0, "verifier_weighting": "softmax",
        "samples": 5, "temperature": 0.7, "max_new_tokens": 96, "cot_max_new_tokens": 384,
        "constrained": False, "seed": 0, "alpha": "raw", "unscored": "keep", "prompts": "paper",
        "verifier_ties": "first", "invalid": "left_out"}
