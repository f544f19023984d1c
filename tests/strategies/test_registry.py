"""Strategies are objects in a registry: the built-in eight, a user's own, and the name lists."""

import numpy as np
import pytest

from harness.data import load_dataset
from harness.strategies import (
    Strategy,
    StrategyConfig,
    decoding_for,
    get_strategy,
    register,
    run_strategy,
    strategy_names,
)
from tests.fakes import ScriptedModel


def test_the_name_lists_come_from_the_registry():
    assert strategy_names()[:8] == ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout",
                                    "sample-n")
    assert strategy_names(reference=True) == ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v")
    assert strategy_names(needs_verifier=True) == ("alm-v", "w-alm-v")
    assert strategy_names(chance_cell=True) == ("base",)


def test_unknown_and_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="unknown strategy 'w_bon'; choose from"):
        get_strategy("w_bon")

    class Another(Strategy):
        name = "bon"

    with pytest.raises(ValueError, match="a strategy named 'bon' is registered already"):
        register(Another)

    class Nameless(Strategy):
        pass

    class Empty(Strategy):
        name = ""

    class Numbered(Strategy):
        name = 5  # type: ignore[assignment]

    for unnamed in (Nameless, Empty, Numbered):
        with pytest.raises(ValueError, match="needs a class attribute 'name'"):
            register(unnamed)


def test_a_users_strategy_runs_like_a_built_in_one():
    class FirstValidBeam(Strategy):
        """Beams, the first valid one taken as it is."""

        name = "test-first-valid-beam"
        needs = ("beam_search",)

        def decoding(self, config, labels):
            return decoding_for("bon", config, labels)

    from harness.models.api import Generation

    class Noting(ScriptedModel):  # a backend's notes on the generation reach the item
        def generate(self, requests, decoding):
            return [Generation(g.candidates, notes=("audio cut to 30 s",))
                    for g in super().generate(requests, decoding)]

    try:
        assert register(FirstValidBeam) is FirstValidBeam  # a decorator: the class stays itself
        beams = [("junk", -0.1), ('{"Anger": 1.0}', -0.5), ('{"Fear": 1.0}', -0.2)]
        model = Noting(lambda request, decoding: beams[: decoding.num_candidates])
        [result] = run_strategy("test-first-valid-beam", model, load_dataset("crema_d")[:1],
                                config=StrategyConfig(beams=3))
        np.testing.assert_allclose(result.probs, [1, 0, 0, 0, 0, 0])
        assert result.notes == ["audio cut to 30 s"]
        assert "test-first-valid-beam" in strategy_names()
        assert "test-first-valid-beam" not in strategy_names(reference=True)
    finally:
        from harness.strategies import _strategy

        _strategy._REGISTRY.pop("test-first-valid-beam", None)


def test_a_run_context_is_frozen_so_a_strategy_cannot_change_it_under_the_next_items():
    import dataclasses

    from harness.strategies import RunContext

    context = RunContext(load_dataset("crema_d")[:1], StrategyConfig())
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.config = StrategyConfig(beams=3)  # type: ignore[misc]


def test_a_strategy_that_uses_none_of_the_valid_candidates_says_so_by_default():
    class Picky(Strategy):
        name = "test-picky"

        def usable(self, candidates, config):
            return []

    [result] = run_strategy(Picky(), ScriptedModel(lambda r, d: [('{"Anger": 1.0}', -0.1)]),
                            load_dataset("crema_d")[:1])
    assert result.candidates[0]["valid"] and not result.valid
    assert result.reason == "no usable candidate" and result.rule == "json_dict"
