"""Where cells run: one worker per model and corpus under xdist, deterministic shards."""

import functools
import os
import subprocess
import sys
import types

import pytest

from harness.pytest_plugin.scheduling import group_key, shard_of, share_cores

NO_CACHE = ("-p", "no:cacheprovider")
RECORDING_GRID = """
import os
from harness.runner import GridConfig
GRID = GridConfig(models=("tiny-qwen2-audio", "uniform"), datasets=("crema_d", "iemocap"),
                  strategies=("base", "cot", "bon", "w-bon"))

def test_cell(cell):
    with open(f"ran-{cell.id}.txt", "w") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"])
"""


@pytest.fixture(autouse=True)
def blas_limits(monkeypatch):
    """share_cores' hold on this process's BLAS, recorded rather than applied (a test's share
    would stay with the worker's later tests; tests/pytest_plugin/test_blas_threads.py applies
    it, in processes of their own)."""
    calls: list[int] = []
    monkeypatch.setattr("harness.pytest_plugin.scheduling.limit_blas", calls.append)
    return calls


def test_group_keys_of_cell_node_ids():
    nodeid = "evals/test_grid.py::test_cell[qwen2.5-omni-7b-msp_podcast-w-alm-v]"
    assert group_key(nodeid) == "qwen2.5-omni-7b-msp_podcast"
    assert group_key(nodeid, "model") == "qwen2.5-omni-7b"
    assert group_key(nodeid + "@qwen2.5-omni-7b", "cell") == "[qwen2.5-omni-7b-msp_podcast-w-alm-v]"
    assert group_key("tests/test_x.py::test_y[1-2]") is None
    by_decoding = {s: group_key(f"e/t.py::test_cell[m-iemocap-{s}]", "decoding")
                   for s in ("base", "cot", "bon", "w-bon", "alm-v", "w-alm-v", "readout", "sample-n")}
    assert by_decoding["bon"] == by_decoding["w-bon"] and by_decoding["alm-v"] == by_decoding["w-alm-v"]
    assert len(set(by_decoding.values())) == 6  # the cells sharing generations stay together
    assert group_key("e/t.py::test_cell[uniform-iemocap-base]", "decoding") == "chance-baselines"
    # a strategy the controller does not know (registered in a worker's conftest) is its own family
    assert group_key("e/t.py::test_cell[m-iemocap-mine]", "decoding") == "m-iemocap-mine"


def test_auto_grouping_spreads_one_model_over_several_gpus_only():
    from harness.pytest_plugin.scheduling import auto_group_by

    assert [auto_group_by(n) for n in (0, 1, 2, 8)] == [
        "model-dataset", "model-dataset", "decoding", "decoding"]


@pytest.mark.parametrize("group_by", ["model-dataset", "model", "decoding"])
def test_one_model_and_corpus_share_one_worker_and_the_groups_spread(pytester, group_by):
    """With the pytest and xdist this project installs, xdist_group kept nothing together (pytest
    9.2 no longer reads the node ids xdist rewrites); the harness's scheduler reads the cell ids."""
    pytester.makepyfile(test_grid=RECORDING_GRID)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "--group-by", group_by,
                                           *NO_CACHE)
    result.assert_outcomes(passed=10)  # 8 tiny cells, 2 uniform
    workers = {p.stem.removeprefix("ran-"): p.read_text() for p in pytester.path.glob("ran-*.txt")}
    groups = {"model": [("tiny-qwen2-audio-crema_d-", "tiny-qwen2-audio-iemocap-")],
              "model-dataset": [("tiny-qwen2-audio-crema_d-",), ("tiny-qwen2-audio-iemocap-",)],
              "decoding": [(f"tiny-qwen2-audio-{c}-bon", f"tiny-qwen2-audio-{c}-w-bon")
                           for c in ("crema_d", "iemocap")]}[group_by]
    for prefixes in groups:
        assert len({w for cell, w in workers.items() if cell.startswith(prefixes)}) == 1, workers
    assert set(workers.values()) == {"gw0", "gw1"}  # the groups spread over both workers


def test_a_worker_whose_cells_all_skip_imports_no_torch(pytester, monkeypatch):
    """Under -n 4 with the embedded default alone, some workers get only cells of models whose
    weights are not here: they skip each cell without importing torch (the core sharing of a
    local model's cell, which imports it, is entered only once the cell's model is had)."""
    monkeypatch.delenv("QWEN2_AUDIO_7B_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(pytester.path / "hub"))  # empty: nothing found there
    pytester.makepyfile(test_grid="""
import sys
from harness.runner import GridConfig
GRID = GridConfig(models=("qwen2-audio-7b",), datasets=("iemocap",), strategies=("base", "bon"))

def test_cell(cell, run_cell):
    try:
        run_cell(cell)
    finally:
        with open(f"torch-{cell.id}.txt", "w") as f:
            f.write(str("torch" in sys.modules))
""")
    result = pytester.runpytest_subprocess("-n", "2", *NO_CACHE)
    result.assert_outcomes(skipped=2)
    # no cell ran, so nothing was checked: the run does not pass, and says why
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["harness: none of the 2 selected cells ran (each skipped, for the "
                                 "reasons in the summary): nothing was evaluated or gated*"])
    seen = {p.name: p.read_text() for p in pytester.path.glob("torch-*.txt")}
    assert len(seen) == 2 and set(seen.values()) == {"False"}, seen


def test_shards_are_deterministic_complete_and_keep_models_together():
    cells = [f"{m}-{d}-{s}" for m in ("a", "b", "c", "d") for d in ("iemocap", "crema_d")
             for s in ("base", "cot")]
    shards = shard_of(cells, 2)
    assert shards == shard_of(list(reversed(cells)), 2)
    assert sorted(shards) == sorted(cells)
    for model in "abcd":
        assert len({shards[c] for c in cells if c.startswith(f"{model}-")}) == 1
    assert sorted(list(shards.values()).count(s) for s in (0, 1)) == [8, 8]
    # fewer models than shards: model-corpus groups, then single cells
    assert len(set(shard_of([c for c in cells if c.startswith("a-")], 2).values())) == 2
    assert len(set(shard_of(["a-iemocap-base", "a-iemocap-cot"], 2).values())) == 2


def test_shards_of_a_run_cover_every_cell_once(pytester):
    pytester.makepyfile(test_grid=RECORDING_GRID.replace('os.environ["PYTEST_XDIST_WORKER"]', '"x"'))
    ran = []
    for shard in ("1/2", "2/2"):
        pytester.runpytest_subprocess("--shard", shard, *NO_CACHE)
        ran.append({p.name for p in pytester.path.glob("ran-*.txt")})
        for path in pytester.path.glob("ran-*.txt"):
            path.unlink()
    assert ran[0] and ran[1] and not ran[0] & ran[1] and len(ran[0] | ran[1]) == 10


def test_two_shards_merged_report_what_one_run_over_all_cells_reports(pytester):
    import subprocess
    import sys

    from tests.pytest_plugin.grid_project import grid_project

    grid_project(pytester)
    runs = []
    for options in (("--report-dir", "whole"), ("--shard", "1/2", "--report-dir", "s1"),
                    ("--shard", "2/2", "--report-dir", "s2")):
        result = pytester.runpytest_subprocess(*options, *NO_CACHE)
        assert result.ret == 0
        [run] = sorted((pytester.path / options[-1]).iterdir())
        runs.append(run)
    assert {len(list((r / "cells").glob("*.json"))) for r in runs[1:]} == {2}
    merged = pytester.path / "merged"
    subprocess.run([sys.executable, "-m", "harness.report", "merge", str(runs[1]), str(runs[2]),
                    "--out", str(merged)], check=True, capture_output=True)
    for table in sorted(p.name for p in runs[0].iterdir() if p.suffix in (".md", ".csv", ".tex")):
        if not table.startswith(("compute", "tables")):  # seconds differ from run to run
            assert (merged / table).read_bytes() == (runs[0] / table).read_bytes(), table


def test_workers_share_the_cores_the_job_was_given_not_the_machines(monkeypatch, tmp_path):
    """Four workers in a job given 8 of a node's 128 cores take 2 threads each, not 32."""
    set_to = []
    monkeypatch.setitem(sys.modules, "torch",
                        types.SimpleNamespace(set_num_threads=set_to.append))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    # what the user set when the plugin was imported (this test run's own OMP_NUM_THREADS=1)
    monkeypatch.setattr("harness.pytest_plugin.scheduling._USER_SET", set())
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 128)
    monkeypatch.setattr("harness._env.CPU_MAX", tmp_path / "no-limit")
    monkeypatch.setattr("harness._env.CFS_QUOTA", tmp_path / "no-limit")
    share_cores(4)
    assert set_to == [2]
    assert {os.environ[n] for n in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} == {"2"}


def test_without_a_list_the_gpus_are_those_nvidia_smi_lists(monkeypatch, tmp_path):
    """Neither HARNESS_GPUS nor CUDA_VISIBLE_DEVICES: ``nvidia-smi -L``'s GPUs by the index
    each names (not by line: MIG lines come between), a GPU in MIG mode as its MIG devices
    (CUDA runs on those, not on the GPU); none where it is not installed or hangs."""
    from harness.pytest_plugin.scheduling import gpu_ids

    monkeypatch.delenv("HARNESS_GPUS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-1a)'\n"
                   "echo '  MIG 1g.18gb     Device  0: (UUID: MIG-2b-4)'\n"
                   "echo '  MIG 1g.18gb     Device  1: (UUID: MIG-5d-6)'\n"
                   "echo '  (a line of some other driver version)'\n"
                   "echo 'GPU 1: NVIDIA H200 (UUID: GPU-3c)'\n"
                   "echo 'GPU 2: NVIDIA H200 (UUID: GPU-7e)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_ids() == ["MIG-2b-4", "MIG-5d-6", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")  # a list wins over what nvidia-smi lists
    assert gpu_ids() == ["2"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")

    def hung(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], 10)

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "run", hung)
        assert gpu_ids() == []
    smi.unlink()
    assert gpu_ids() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    assert gpu_ids() == ["3", "5"]


def test_a_local_cell_takes_the_cores_over_the_local_cells_running_now(monkeypatch, tmp_path):
    """Two local-model cells running (this one and another worker's): half the cores each; alone
    again, every core; the mark is gone once the cell ends. The user's OMP_NUM_THREADS wins."""
    from harness.pytest_plugin import scheduling

    set_to = []
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(set_num_threads=set_to.append))
    monkeypatch.setattr(scheduling, "usable_cores", lambda: 8)
    monkeypatch.setattr(scheduling, "_USER_SET", set())
    running = tmp_path / ".running"
    running.mkdir()
    (running / "gw1").touch()
    with scheduling.cores_while_running(running, "gw0"):
        assert (running / "gw0").exists()
    (running / "gw1").unlink()
    with scheduling.cores_while_running(running, "gw0"):
        pass
    assert set_to == [4, 8] and not (running / "gw0").exists()
    monkeypatch.setattr(scheduling, "_USER_SET", {"OMP_NUM_THREADS"})
    with scheduling.cores_while_running(running, "gw0"):
        pass
    assert set_to == [4, 8]


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/4", (2, 4)), ("4/4", (4, 4))])
def test_a_shard_is_its_index_and_count(text, expected):
    from harness.pytest_plugin.scheduling import parse_shard

    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "4", "/2", "a/2", "1/b", "-1/2", "1/0", ""])
def test_a_shard_outside_one_to_its_count_is_a_usage_error(text):
    from harness.pytest_plugin.scheduling import parse_shard

    with pytest.raises(pytest.UsageError, match=r"^--shard .*expected I/N with 1 <= I <= N"):
        parse_shard(text)


def _items(*cells):
    """Collected items: a grid cell (its callspec holds the cell), another parametrized test, a
    plain one."""
    cell_items = [types.SimpleNamespace(nodeid=f"e/t.py::test_cell[{c}]",
                                        callspec=types.SimpleNamespace(id=c, params={"cell": c}))
                  for c in cells]
    other = types.SimpleNamespace(nodeid="t/t.py::test_x[1]",
                                  callspec=types.SimpleNamespace(id="1", params={"x": 1}))
    return [*cell_items, other, types.SimpleNamespace(nodeid="t/t.py::test_y")]


def _extend(into, items):
    into.extend(items)


def test_a_shard_keeps_its_cells_and_the_first_keeps_the_other_tests():
    """Each shard keeps the cells shard_of gives it, in the order collected; the tests that are
    not cells run in shard 1 only; what is dropped is reported as deselected."""
    from harness.pytest_plugin.scheduling import select_shard

    cells = ("a-iemocap-base", "b-iemocap-base", "a-iemocap-cot", "c-crema_d-base")
    assigned = shard_of(cells, 2)
    kept = {}
    for index in (1, 2):
        items, deselected = _items(*cells), []
        config = types.SimpleNamespace(hook=types.SimpleNamespace(
            pytest_deselected=functools.partial(_extend, deselected)))
        select_shard(config, items, f"{index}/2")
        kept[index] = [item.nodeid for item in items]
        assert {i.nodeid for i in deselected} == {i.nodeid for i in _items(*cells)} - set(kept[index])
        assert kept[index] == [f"e/t.py::test_cell[{c}]" for c in cells
                               if assigned[c] == index - 1] + (
                                   ["t/t.py::test_x[1]", "t/t.py::test_y"] if index == 1 else [])
    assert len(kept[1]) >= 3 and len(kept[2]) >= 1


def test_one_shard_of_one_deselects_nothing():
    from harness.pytest_plugin.scheduling import select_shard

    items, calls = _items("a-iemocap-base"), []
    config = types.SimpleNamespace(hook=types.SimpleNamespace(
        pytest_deselected=functools.partial(_extend, calls)))
    select_shard(config, items, "1/1")
    assert len(items) == 3 and calls == []


def test_as_many_models_as_shards_keep_each_model_whole():
    cells = [f"{m}-{d}-base" for m in ("a", "b") for d in ("iemocap", "crema_d", "msp_podcast")]
    shards = shard_of(cells, 2)
    assert {shards[c] for c in cells[:3]} == {0} and {shards[c] for c in cells[3:]} == {1}


def test_groups_of_one_size_go_to_the_shards_in_the_order_of_their_names():
    """``a`` before ``a-b`` (the names), not ``a-b-...`` before ``a-i...`` (their cells)."""
    assert shard_of(["a-b-iemocap-base", "a-iemocap-base"], 2) == {
        "a-iemocap-base": 0, "a-b-iemocap-base": 1}


def test_the_scheduler_groups_cells_by_the_key_asked_for_and_other_tests_as_loadgroup(monkeypatch):
    from harness.pytest_plugin.scheduling import make_scheduler

    config = types.SimpleNamespace(getvalue=lambda name: ["2*popen"], getoption=lambda name: None)
    cell = "e/t.py::test_cell[m-iemocap-cot]"
    assert make_scheduler(config, None, "model")._split_scope(cell) == "m"
    assert make_scheduler(config, None, "model-dataset")._split_scope(cell) == "m-iemocap"
    assert make_scheduler(config, None, "model")._split_scope("t/t.py::test_x[1]@g") == "g"
    assert make_scheduler(config, None, "model")._split_scope("t/t.py::test_y") == "t/t.py::test_y"
    monkeypatch.setenv("HARNESS_GPUS", "0,1")
    assert make_scheduler(config, None, "auto")._split_scope(cell) == group_key(cell, "decoding")
    monkeypatch.setenv("HARNESS_GPUS", "0")
    assert make_scheduler(config, None, "auto")._split_scope(cell) == "m-iemocap"


@pytest.mark.parametrize(("cores", "workers", "threads"),
                         [(8, None, 8), (8, {"workerid": "gw0"}, 8), (8, 3, 2), (1, 4, 1)])
def test_each_worker_takes_its_share_of_the_cores_and_at_least_one(monkeypatch, cores, workers,
                                                                  threads, blas_limits):
    """Without xdist (no worker, or one of no count) the one process takes every core; the count
    is xdist's, never PYTEST_XDIST_WORKER_COUNT's (a worker hands it on to a pytest it starts)."""
    from harness.pytest_plugin import scheduling

    set_to = []
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(set_num_threads=set_to.append))
    monkeypatch.setattr(scheduling, "usable_cores", lambda: cores)
    monkeypatch.setattr(scheduling, "_USER_SET", set())
    for name in scheduling.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "64")  # inherited: not this session's
    config = types.SimpleNamespace()
    if workers is not None:
        config.workerinput = workers if isinstance(workers, dict) else {"workerid": "gw0",
                                                                         "workercount": workers}
    share_cores(scheduling.worker_count(config))
    assert set_to == [threads] and os.environ["OPENBLAS_NUM_THREADS"] == str(threads)
    assert blas_limits == [threads]


def test_before_torch_is_imported_the_share_is_left_in_the_environment(monkeypatch):
    from harness.pytest_plugin import scheduling

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(scheduling, "usable_cores", lambda: 6)
    monkeypatch.setattr(scheduling, "_USER_SET", set())
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share_cores(2)
    assert os.environ["OMP_NUM_THREADS"] == "3" and "torch" not in sys.modules


def test_a_local_cell_imports_torch_to_set_its_threads_and_tidies_its_mark(monkeypatch, tmp_path):
    """torch not imported yet: the cell imports it when its model is about to load (its first
    cell would otherwise run on other threads than the later ones), not before (a cell whose
    answers are all cached loads none); a folder not made yet is made; a mark removed meanwhile
    (the folder tidied by hand) is no error; one core is one thread."""
    from harness.pytest_plugin import scheduling

    set_to = []
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(scheduling, "_torch_or_none",
                        lambda: types.SimpleNamespace(set_num_threads=set_to.append))
    monkeypatch.setattr(scheduling, "usable_cores", lambda: 1)
    monkeypatch.setattr(scheduling, "_USER_SET", set())
    running = tmp_path / "run" / ".running"
    with scheduling.cores_while_running(running, "gw3") as take_cores:
        (running / "gw3").unlink()
        assert set_to == []
        take_cores()  # what the grid worker calls before loading a model
    assert set_to == [1] and running.is_dir() and not any(running.iterdir())


def test_torch_is_imported_where_it_is_installed_and_none_is_had_where_it_is_not():
    from harness.pytest_plugin.scheduling import _torch_or_none

    try:
        import torch
    except ImportError:  # an environment without the hf extra
        torch = None
    assert _torch_or_none() is torch
