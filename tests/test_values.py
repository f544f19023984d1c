"""A flag reads one way wherever a value arrives as text: corpus options, strategy arguments and
model arguments (``--strategy-arg constrained=False`` was the text "False", so constrained was on)."""

import pytest

from harness._values import flag, typed
from harness.models.fast_path import FastPathOptions
from harness.strategies import StrategyConfig


@pytest.mark.parametrize("value, read", [
    (True, True), (False, False), (1, True), (0, False), ("False", False), ("false", False),
    (" TRUE ", True), ("yes", True), ("No", False), ("on", True), ("off", False), ("1", True),
    ("0", False),
])
def test_a_flag_reads_its_spellings(value, read):
    assert flag(value) is read


@pytest.mark.parametrize("value", ["maybe", "", 2, -1, 0.0, None, [], "ja"])
def test_anything_else_is_not_a_flag(value):
    with pytest.raises(ValueError, match="takes true or false"):
        flag(value)


def test_strategy_config_reads_constrained_as_a_flag_and_checks_the_seed():
    assert StrategyConfig(constrained="False").constrained is False  # type: ignore[arg-type]
    assert StrategyConfig(constrained="true") == StrategyConfig(constrained=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="constrained must be true or false, not 'maybe'"):
        StrategyConfig(constrained="maybe")  # type: ignore[arg-type]
    for seed in (-1, "abc", 1.5, True):
        with pytest.raises(ValueError, match="seed must be a whole number of at least 0"):
            StrategyConfig(seed=seed)  # type: ignore[arg-type]


def test_fast_path_options_read_their_flags_and_check_the_batch_size():
    options = FastPathOptions(share_prompts="False", compile_blocks="off")  # type: ignore[arg-type]
    assert options.share_prompts is False and options.compile_blocks is False
    assert FastPathOptions().compile_blocks is None  # the device decides
    with pytest.raises(ValueError, match="share_prompts must be true or false, not 'maybe'"):
        FastPathOptions(share_prompts="maybe")  # type: ignore[arg-type]
    for size in (0, "abc", True, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
            FastPathOptions(batch_size=size)  # type: ignore[arg-type]


def test_an_openai_compatible_servers_capabilities_are_read_as_flags():
    pytest.importorskip("openai", reason="the api extra is not installed")
    from harness.models.openai_api import openai_compatible

    backend = openai_compatible("m", base_url="http://127.0.0.1:9/v1", beam_search="False",
                                logprobs="on")
    assert backend.info.capabilities.beam_search is False and backend.info.capabilities.logprobs
    with pytest.raises(ValueError, match="n_candidates must be true or false, not 'maybe'"):
        openai_compatible("m", base_url="http://127.0.0.1:9/v1", n_candidates="maybe")


@pytest.mark.parametrize(("raw", "value"), [("[1, 2]", [1, 2]), ("7", 7), ("false", False),
                                            ("null", None), ("Test1", "Test1"), ("", ""),
                                            ("[" * 5_000, "[" * 5_000)])
def test_a_typed_value_is_json_where_it_parses_else_its_text(raw, value):
    assert typed(raw) == value and type(typed(raw)) is type(value)
