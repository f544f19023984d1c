"""``python -m harness.cache prune``: a model's entries (or a kind's, or those written before a
day) removed and their space given back; nothing removed by a filter that matches no model."""

import time

import pytest

from harness.cache import CacheError, GenerationCache
from harness.cache.__main__ import main
from harness.cache.info import cache_groups
from harness.cache.prune import prune_cache


@pytest.fixture
def cache_file(tmp_path):
    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    cache.put_many("generation", "old-model", [(f"o{i}", {"text": "x" * 20_000}) for i in range(50)])
    cache.put_many("generation", "new-model", [("n0", {"text": "y"})])
    cache.put_many("labels", "new-model", [("l0", [0.1, 0.9])])
    cache.close()
    return path


def test_a_models_entries_are_removed_and_their_space_given_back(cache_file, capsys):
    size = cache_file.stat().st_size
    assert main(["prune", str(cache_file), "--model", "old-model", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"{cache_file}: 50 entries (0.95 MiB) would be removed")
    assert len(cache_groups(cache_file)) == 3
    assert main(["prune", str(cache_file), "--model", "old-model"]) == 0
    assert "50 entries (0.95 MiB) removed" in capsys.readouterr().out
    assert not cache_file.with_name(f"{cache_file.name}-wal").exists()  # the file closed
    assert [(g.kind, g.model) for g in cache_groups(cache_file)] == [
        ("generation", "new-model"), ("labels", "new-model")]
    assert cache_file.stat().st_size < size / 10  # vacuumed: the disk has the space back


def test_filters_combine_and_a_day_bounds_what_was_written_before_it(cache_file):
    assert not prune_cache(cache_file, model="old-model", dry_run=True).space_returned
    assert prune_cache(cache_file, model="new-model", kind="labels").entries == 1
    tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86_400))
    assert prune_cache(cache_file, before="2000-01-01").entries == 0
    assert prune_cache(cache_file, kind="generation", before=tomorrow).entries == 51
    assert cache_groups(cache_file) == []


@pytest.mark.parametrize(("args", "says"), [
    ((), "name what to remove (--model, --kind, --before); to start afresh, delete the file"),
    (("--model", "old-modle"), "no entry of model 'old-modle'; its models: new-model, old-model"),
    (("--kind", "generations"), "--kind 'generations': choose one of generation, labels, clip"),
    (("--before", "1/12/2026"), "--before '1/12/2026': not a day as YYYY-MM-DD"),
])
def test_a_prune_that_would_remove_nothing_meant_says_why_and_removes_nothing(
        cache_file, capsys, args, says):
    assert main(["prune", str(cache_file), *args]) == 1
    assert says in capsys.readouterr().err
    assert sum(g.entries for g in cache_groups(cache_file)) == 52


def test_what_is_not_a_cache_is_left_as_it_was(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    with pytest.raises(CacheError, match="not a usable generation cache"):
        prune_cache(other, model="m")
    assert other.read_text() == "not a database"


def test_a_file_another_run_holds_is_pruned_and_says_its_space_stays(cache_file, capsys,
                                                                     monkeypatch):
    import sqlite3

    from harness.cache import prune

    monkeypatch.setattr(prune, "WAIT_S", 0.2)
    reader = sqlite3.connect(cache_file)  # another run, in the middle of reading the cache
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM entries").fetchone()
    try:
        assert main(["prune", str(cache_file), "--kind", "labels"]) == 0
    finally:
        reader.close()
    out = capsys.readouterr().out
    assert "1 entry (0.00 MiB) removed; another run holds the file" in out
    assert [g.kind for g in cache_groups(cache_file)] == ["generation", "generation"]
