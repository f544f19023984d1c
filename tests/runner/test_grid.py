"""``harness.runner.grid``: the grid's configuration and the cells it expands into."""

import dataclasses

import pytest

from harness.runner.grid import Cell, GridConfig, Thresholds
from harness.strategies import strategy_names


def test_the_defaults_are_the_papers_grid():
    grid = GridConfig(models=("tiny-qwen2-audio",))
    assert grid.datasets == ("iemocap", "msp_podcast", "crema_d")
    assert grid.strategies == strategy_names(reference=True) == (
        "base", "cot", "bon", "w-bon", "alm-v", "w-alm-v")
    assert (grid.verifier, grid.seed, grid.limit) == ("gpt-4o", 0, None)
    assert (grid.entropy_bins, grid.interval, grid.alpha) == ("width", "expanded", "raw")
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.seed = 1  # type: ignore[misc]


def test_cells_put_each_models_together_and_a_chance_baseline_gets_the_chance_cell_alone():
    strict = Thresholds(valid_min=0.9, js_max=0.5, bc_min=0.2, r2_min=-1.0)
    loose = Thresholds(valid_min=0.1)
    grid = GridConfig(models=("tiny-qwen2-audio", "uniform"), datasets=("crema_d", "iemocap"),
                      strategies=("bon", "base"), thresholds={"uniform": strict, "*": loose})
    assert [c.id for c in grid.cells()] == [
        "tiny-qwen2-audio-crema_d-bon", "tiny-qwen2-audio-crema_d-base",
        "tiny-qwen2-audio-iemocap-bon", "tiny-qwen2-audio-iemocap-base",
        "uniform-crema_d-base", "uniform-iemocap-base"]
    assert [c.thresholds for c in grid.cells()] == [loose] * 4 + [strict] * 2
    assert GridConfig(models=("uniform",)).cells()[0].thresholds == Thresholds()


@pytest.mark.parametrize("model, kind, gpu", [("qwen2-audio-7b", "local", True),
                                              ("tiny-qwen2-audio", "local", False),
                                              ("gpt-4o", "api", False), ("uniform", "chance", False)])
def test_a_cell_knows_its_models_kind_and_whether_it_needs_a_gpu(model, kind, gpu):
    cell = Cell(model, "crema_d", "base")
    assert (cell.id, cell.kind, cell.needs_gpu) == (f"{model}-crema_d-base", kind, gpu)


def test_every_cell_runs_one_strategy_config_and_a_model_may_have_its_own_verifier():
    grid = GridConfig(models=("tiny-qwen2-audio",), seed=7, alpha="mean",
                      strategy_args={"beams": 3, "seed": 9}, verifiers={"tiny-qwen2-audio": "x"})
    config = grid.strategy_config()
    assert (config.beams, config.alpha, config.seed) == (3, "mean", 9)  # the args win
    assert GridConfig(models=(), seed=7).strategy_config().seed == 7
    assert (grid.verifier_for("tiny-qwen2-audio"), grid.verifier_for("other")) == ("x", "gpt-4o")
