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


def test_the_grid_refuses_a_bad_setting_before_any_cell_runs(monkeypatch):
    from harness.pytest_plugin.options import _check_environment

    monkeypatch.setenv("HARNESS_READERS", "x")
    with pytest.raises(pytest.UsageError, match="HARNESS_READERS='x'"):
        _check_environment()
    monkeypatch.delenv("HARNESS_READERS")
    monkeypatch.setenv("HARNESS_CHUNK_MIB", "0")
    with pytest.raises(pytest.UsageError, match="HARNESS_CHUNK_MIB='0'"):
        _check_environment()


def test_the_cores_are_those_the_process_may_run_on_not_the_machines(monkeypatch):
    """A batch job given 4 of a node's 64 cores counts 4: with every core counted, four workers
    took 16 threads each on 4 cores."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {3, 5, 6, 7}, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert usable_cores() == 4
    monkeypatch.delattr("os.sched_getaffinity", raising=False)
    assert usable_cores() == 64
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert usable_cores() == 1
