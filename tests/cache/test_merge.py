"""``python -m harness.cache merge``: the caches of several machines become one."""

import os
import sqlite3

from harness.cache import GenerationCache


def test_caches_of_several_machines_merge_into_one(tmp_path, capsys):
    from harness.cache.__main__ import main

    rows = {f"k{i}": {"v": i} for i in range(6)}
    for name, keys in (("a", ["k0", "k1", "k2"]), ("b", ["k2", "k3", "k4", "k5"])):
        cache = GenerationCache(tmp_path / name / "generations.sqlite")
        cache.put_many("generation", "m", [(k, rows[k]) for k in keys])
        cache.close()
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "a" / "generations.sqlite"),
                 str(tmp_path / "b" / "generations.sqlite")]) == 0
    target = tmp_path / "all.sqlite"  # k2 is a's: b adds three
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path / name / 'generations.sqlite'}: 3 entries added to {target}" for name in "ab"]
    merged = GenerationCache(tmp_path / "all.sqlite")
    assert merged.get_many(list(rows)) == rows
    merged.close()
    (tmp_path / "junk.sqlite").write_text("not a database")
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "junk.sqlite")]) == 1
    # a mistyped source is refused, not opened (which made an empty cache there: "0 entries")
    assert main(["merge", str(tmp_path / "all.sqlite"), str(tmp_path / "typo.sqlite")]) == 1
    assert not (tmp_path / "typo.sqlite").exists()
    assert "no such cache file" in capsys.readouterr().err


def test_a_refused_source_leaves_no_target_behind(tmp_path, capsys):
    from harness.cache.__main__ import main

    (tmp_path / "junk.sqlite").write_text("not a database")
    (tmp_path / "folder").mkdir()
    for source in ("junk.sqlite", "folder"):
        assert main(["merge", str(tmp_path / "new.sqlite"), str(tmp_path / source)]) == 1
        assert not (tmp_path / "new.sqlite").exists()  # no empty cache made for nothing
    err = capsys.readouterr().err
    assert "junk.sqlite: not a usable generation cache" in err  # a folder: the cache file in it
    assert f"no such cache file: {tmp_path / 'folder' / 'generations.sqlite'}" in err


def test_a_source_is_only_read(tmp_path, capsys):
    """An empty file or another program's database named as a source is refused and left as it
    was (opened as a cache, it was given the cache's table: "0 entries added"), and the target
    named again as a source is refused."""
    from harness.cache.__main__ import main

    (tmp_path / "empty.sqlite").write_bytes(b"")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE notes (text TEXT)")
    other.commit()
    other.close()
    before = {name: (tmp_path / name).read_bytes() for name in ("empty.sqlite", "other.db")}
    for name in before:
        assert main(["merge", str(tmp_path / "new.sqlite"), str(tmp_path / name)]) == 1
        assert (tmp_path / name).read_bytes() == before[name]
        assert not (tmp_path / "new.sqlite").exists()
    err = capsys.readouterr().err
    assert "empty.sqlite: not a generation cache (it has no entries table); it was left as it was" in err
    assert "other.db: not a generation cache (it has no entries table)" in err
    cache = GenerationCache(tmp_path / "a.sqlite")
    cache.put_many("generation", "m", [("k", {"v": 1})])
    cache.close()
    assert main(["merge", str(tmp_path / "a.sqlite"), str(tmp_path / "a.sqlite")]) == 1
    assert "a.sqlite: is the target itself" in capsys.readouterr().err


def test_an_entry_already_in_the_target_is_kept_and_only_new_ones_are_counted(tmp_path):
    from harness.cache.merge import merge_caches

    for name, value in (("a", {"v": "a's"}), ("b", {"v": "b's"})):
        cache = GenerationCache(tmp_path / f"{name}.sqlite")
        cache.put_many("generation", "m", [("shared", value), (f"only-{name}", value)])
        cache.close()
    added = merge_caches(tmp_path / "all.sqlite", [tmp_path / "a.sqlite", tmp_path / "b.sqlite"])
    assert added == {str(tmp_path / "a.sqlite"): 2, str(tmp_path / "b.sqlite"): 1}
    merged = GenerationCache(tmp_path / "all.sqlite")
    assert merged.get_many(["shared", "only-a", "only-b"]) == {
        "shared": {"v": "a's"}, "only-a": {"v": "a's"}, "only-b": {"v": "b's"}}



def test_a_device_or_a_newer_harness_cache_is_refused_and_the_target_is_left_whole(tmp_path):
    import pytest

    from harness.cache import CacheError
    from harness.cache.merge import merge_caches
    from harness.cache.store import SCHEMA_VERSION

    target = tmp_path / "all.sqlite"
    with pytest.raises(CacheError, match="^/dev/null: not a cache file \\(is a character device, "
                                         "not a regular file\\)$"):
        merge_caches(target, ["/dev/null"])
    os.mkfifo(tmp_path / "fifo.sqlite")  # never opened: it would wait for a writer
    with pytest.raises(CacheError, match="fifo.sqlite: not a cache file \\(is a FIFO, not a regular file\\)"):
        merge_caches(target, [tmp_path / "fifo.sqlite"])
    newer = tmp_path / "newer.sqlite"
    cache = GenerationCache(newer)
    cache.put_many("generation", "m", [("k", {"v": 1})])
    cache.close()
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(CacheError, match=f"schema version {SCHEMA_VERSION + 1}, written by a newer"):
        merge_caches(target, [newer])
    assert not target.exists()
    older = tmp_path / "older.sqlite"
    cache = GenerationCache(older)
    cache.put_many("generation", "m", [("k", {"v": 1})])
    cache.close()
    assert merge_caches(target, [older]) == {str(older): 1}
    assert not (tmp_path / "all.sqlite-wal").exists()  # closed: the file alone holds it all


def test_a_cache_in_a_folder_this_user_cannot_write_is_read_as_it_is(tmp_path, monkeypatch):
    """SQLite reads a write-ahead-log database read-only only where it can make the log's index
    beside it; as root the tests are never refused, so the refusal is played here."""
    import pytest

    from harness.cache import CacheError
    from harness.cache.info import cache_groups
    from harness.cache.merge import merge_caches

    real = sqlite3.connect

    class Refusing:
        def __init__(self, db):
            self.db = db

        def execute(self, *args):
            raise sqlite3.OperationalError("attempt to write a readonly database")

        def close(self):
            self.db.close()

    def connect(name, *args, **kwargs):
        db = real(name, *args, **kwargs)
        refused = str(name).startswith("file:") and "immutable=1" not in str(name)
        return Refusing(db) if refused else db

    source = tmp_path / "colleague.sqlite"
    cache = GenerationCache(source)
    cache.put_many("generation", "m", [("k", {"v": 1})])
    cache.close()
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert [(g.model, g.entries) for g in cache_groups(source)] == [("m", 1)]
    assert merge_caches(tmp_path / "mine.sqlite", [source]) == {str(source): 1}
    (tmp_path / "colleague.sqlite-wal").write_bytes(b"")  # an empty log holds nothing more
    assert [(g.model, g.entries) for g in cache_groups(source)] == [("m", 1)]
    (tmp_path / "colleague.sqlite-wal").write_bytes(b"\0" * 64)  # entries not yet in the file
    with pytest.raises(CacheError, match="its write-ahead log colleague.sqlite-wal holds entries "
                                         "not yet in the file; copy both to a folder you can"):
        cache_groups(source)
