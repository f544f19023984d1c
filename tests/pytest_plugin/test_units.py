import pytest

from harness.pytest_plugin.scheduling import pin_gpu
from harness.runner import Cell, GridConfig, Thresholds


@pytest.mark.parametrize(("worker", "expected"), [("gw0", "4"), ("gw1", "5"), ("gw2", "4")])
def test_each_worker_gets_one_gpu(monkeypatch, worker, expected):
    monkeypatch.setenv("HARNESS_GPUS", "4,5")
    # set, then deleted, so that what pin_gpu sets is undone: a delenv of a variable that is not
    # there records nothing, and "4" stayed for the worker's later tests (a CPU-only warning)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    pin_gpu(worker)
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == expected


@pytest.mark.parametrize("listed", ["abc", "-1", "0,gpu1", "0;1", "GPU-"])
def test_a_harness_gpus_entry_that_names_no_gpu_is_refused(monkeypatch, listed):
    """CUDA reads such a list as "no GPU": a 7B model would have run on the CPU without a word."""
    from harness.pytest_plugin.scheduling import gpu_ids

    monkeypatch.setenv("HARNESS_GPUS", listed)
    with pytest.raises(ValueError, match=r"^HARNESS_GPUS=.*is not a GPU's index or UUID"):
        gpu_ids()


def test_gpu_indexes_and_uuids_are_read_with_their_spaces_trimmed(monkeypatch):
    from harness.pytest_plugin.scheduling import gpu_ids

    monkeypatch.setenv("HARNESS_GPUS", " 0, GPU-8f3a2b1c-77de, MIG-GPU-8f3a/1/0 ,,")
    assert gpu_ids() == ["0", "GPU-8f3a2b1c-77de", "MIG-GPU-8f3a/1/0"]
    monkeypatch.setenv("HARNESS_GPUS", "")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "weird")  # the cluster's to set: not ours to refuse
    assert gpu_ids() == ["weird"]


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
