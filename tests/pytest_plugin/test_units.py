import pytest

from harness.pytest_plugin.scheduling import pin_gpu
from harness.runner import Cell, GridConfig, Thresholds


@pytest.mark.parametrize(("worker", "expected"), [("gw0", "4"), ("gw1", "5"), ("gw2", "4")])
def test_each_worker_gets_one_gpu(monkeypatch, worker, expected):
    monkeypatch.setenv("HARNESS_GPUS", "4,5")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pin_gpu(worker)
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == expected


def test_grid_cells_ids_kinds_and_thresholds():
    grid = GridConfig(models=("tiny-qwen2-audio", "uniform", "gpt-4o", "openai-compatible:x"),
                      datasets=("iemocap",), strategies=("base", "bon"),
                      thresholds={"uniform": Thresholds(valid_min=1.0)})
    cells = grid.cells()
    assert [c.id for c in cells] == [
        "tiny-qwen2-audio-iemocap-base", "tiny-qwen2-audio-iemocap-bon", "uniform-iemocap-base",
        "gpt-4o-iemocap-base", "gpt-4o-iemocap-bon", "openai-compatible:x-iemocap-base",
        "openai-compatible:x-iemocap-bon"]
    assert [c.kind for c in cells[::2]] == ["local", "chance", "api", "api"]
    assert cells[2].thresholds.valid_min == 1.0 and cells[0].thresholds.valid_min is None
    assert Cell("m", "d", "s").id == "m-d-s"
