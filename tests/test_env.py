"""Settings from environment variables are refused, naming the variable, when they are not what
they must be (harness._env): before, a chunk size of -5 ended in an IndexError and a clip limit
of ``abc`` made every clip "unreadable audio"."""

import pytest

from harness._env import positive_float, positive_int, usable_cores
from harness.data import load_dataset
from harness.strategies import run_strategy
from tests.fakes import ScriptedModel

ANSWER = [('{"Anger": 1}', -1.0)]


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "2.5", "1e3"])
def test_a_count_that_is_not_a_whole_number_of_at_least_one_is_refused(monkeypatch, raw):
    monkeypatch.setenv("HARNESS_CHUNK", raw)
    with pytest.raises(ValueError, match=f"HARNESS_CHUNK='{raw}': must be a whole number"):
        positive_int("HARNESS_CHUNK", 256)
    with pytest.raises(ValueError, match="HARNESS_CHUNK="):
        run_strategy("base", ScriptedModel(lambda r, d: ANSWER), load_dataset("crema_d"))


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "abc"])
def test_a_clip_limit_that_is_not_seconds_above_zero_is_refused_not_blamed_on_the_clips(
        monkeypatch, raw):
    monkeypatch.setenv("HARNESS_MAX_CLIP_SECONDS", raw)
    with pytest.raises(ValueError, match=f"HARNESS_MAX_CLIP_SECONDS='{raw}'"):
        positive_float("HARNESS_MAX_CLIP_SECONDS")
    with pytest.raises(ValueError, match="HARNESS_MAX_CLIP_SECONDS="):
        run_strategy("base", ScriptedModel(lambda r, d: ANSWER), load_dataset("crema_d"))


def test_unset_or_empty_takes_the_default_and_good_values_are_read(monkeypatch):
    monkeypatch.delenv("HARNESS_CACHE_CHUNK", raising=False)
    assert positive_int("HARNESS_CACHE_CHUNK", 256) == 256
    monkeypatch.setenv("HARNESS_CACHE_CHUNK", " ")
    assert positive_int("HARNESS_CACHE_CHUNK", 256) == 256
    monkeypatch.setenv("HARNESS_CACHE_CHUNK", "8")
    assert positive_int("HARNESS_CACHE_CHUNK", 256) == 8
    monkeypatch.setenv("HARNESS_MAX_CLIP_SECONDS", "30.5")
    assert positive_float("HARNESS_MAX_CLIP_SECONDS") == 30.5
    monkeypatch.setenv("HARNESS_CACHE_CHUNK", "1")  # the least of each
    assert positive_int("HARNESS_CACHE_CHUNK", 256) == 1
    monkeypatch.setenv("HARNESS_MAX_CLIP_SECONDS", "0.25")
    assert positive_float("HARNESS_MAX_CLIP_SECONDS") == 0.25


def test_the_grid_refuses_a_bad_setting_before_any_cell_runs(monkeypatch):
    from harness.pytest_plugin.options import _check_environment

    monkeypatch.setenv("HARNESS_READERS", "x")
    with pytest.raises(pytest.UsageError, match="HARNESS_READERS='x'"):
        _check_environment()
    monkeypatch.delenv("HARNESS_READERS")
    monkeypatch.setenv("HARNESS_CHUNK_MIB", "0")
    with pytest.raises(pytest.UsageError, match="HARNESS_CHUNK_MIB='0'"):
        _check_environment()


def test_the_cores_are_those_the_process_may_run_on_not_the_machines(monkeypatch, tmp_path):
    """A batch job given 4 of a node's 64 cores counts 4: with every core counted, four workers
    took 16 threads each on 4 cores."""
    monkeypatch.setattr("harness._env.CPU_MAX", tmp_path / "none")
    monkeypatch.setattr("harness._env.CFS_QUOTA", tmp_path / "none")
    affinity = {0: {3, 5, 6, 7}}  # this process's (pid 0), not another's
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: affinity.get(pid, set(range(64))),
                        raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert usable_cores() == 4
    affinity[0] = {9}
    assert usable_cores() == 1
    monkeypatch.delattr("os.sched_getaffinity", raising=False)
    assert usable_cores() == 64
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert usable_cores() == 1


@pytest.mark.parametrize(("v2", "v1", "cores"), [
    ("250000 100000\n", None, 3),  # a limit of 2.5 CPUs: 3 threads
    ("max 100000\n", None, 8),  # no limit
    (None, ("400000", "100000"), 4),  # cgroup v1
    (None, ("-1", "100000"), 8),
    ("50000 100000", None, 1),
    ("garbage", None, 8),  # unreadable: the affinity stands
    ("2000000 100000", None, 8),  # a limit above the affinity
])
def test_a_containers_cpu_limit_caps_the_cores(monkeypatch, tmp_path, v2, v1, cores):
    """A pod limited to 4 CPUs on a 128-core node runs 4 threads' worth, not 128."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    cpu_max, quota = tmp_path / "cpu.max", tmp_path / "cpu" / "cpu.cfs_quota_us"
    monkeypatch.setattr("harness._env.CPU_MAX", cpu_max)
    monkeypatch.setattr("harness._env.CFS_QUOTA", quota)
    if v2 is not None:
        cpu_max.write_text(v2)
    if v1 is not None:
        quota.parent.mkdir()
        quota.write_text(v1[0])
        (quota.parent / "cpu.cfs_period_us").write_text(v1[1])
    assert usable_cores() == cores
